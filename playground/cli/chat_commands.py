"""Slash commands of the terminal chat: one table, every argument checked, unknown commands refused (never sent
to the model). ``//text`` sends a message that starts with a slash."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..definitions.schema import did_you_mean
from ..errors import PlaygroundError, ValidationError
from ..guard.policy import PolicyHolder
from ..steering.request import active_strengths, parse_assignments

COMMANDS = {
    "/help": "this list",
    "/quit": "leave (also /exit, Ctrl-D)",
    "/clear": "start a new conversation",
    "/undo": "forget the last turn",
    "/persona": "NAME: talk to another persona (no name: the one you started with)",
    "/steer": "TRAIT=S ...: steer the next replies (−2…2; 0 or 'off' stops); no argument: show the steering",
    "/probes": "the last reply's probe readouts (reply mean, at the prompt, how far to trust each probe)",
    "/policy": "show the guard policy; /policy FILE uses another, /policy off none, /policy default the shipped one",
}
HELP = "commands: " + ", ".join(COMMANDS) + " (/help explains each; //text sends a message starting with '/')"
QUIT = ("/quit", "/exit")


@dataclass
class TerminalChat:
    """What the terminal chat carries between lines."""

    pg: Any
    session: Any
    default_persona: str
    options: dict[str, Any]
    last: Any = None  # the last ChatResult
    printer: Callable[[str], None] = field(default=print)


def greet(chat: TerminalChat) -> None:
    """The persona's greeting, if it has one."""
    if chat.session.greeting:
        chat.printer(f"{chat.session.persona.name}: {chat.session.greeting}")


def is_command(line: str) -> bool:
    return line.startswith("/") and not line.startswith("//")


def as_message(line: str) -> str:
    """A line to send: ``//text`` becomes ``/text``."""
    return line[1:] if line.startswith("//") else line


def run_command(chat: TerminalChat, line: str) -> bool:
    """Run one slash command; False when the chat should end."""
    name, _, arg = line.strip().partition(" ")
    name, arg = name.lower(), arg.strip()
    if name in QUIT:
        return False
    handler = _HANDLERS.get(name)
    if handler is None:
        hint = did_you_mean(name, list(COMMANDS))
        chat.printer(f"[unknown command '{name}'{hint}; nothing was sent] {HELP}")
        return True
    try:
        handler(chat, arg)
    except PlaygroundError as exc:
        chat.printer(f"[error] {exc}")
    return True


def _help(chat: TerminalChat, arg: str) -> None:
    width = max(map(len, COMMANDS))
    chat.printer("\n".join(f"  {k.ljust(width)}  {v}" for k, v in COMMANDS.items()))


def _clear(chat: TerminalChat, arg: str) -> None:
    chat.session.clear()
    chat.printer("[conversation cleared]")


def _undo(chat: TerminalChat, arg: str) -> None:
    chat.printer("[last turn removed]" if chat.session.undo() else "[nothing to undo]")


def _persona(chat: TerminalChat, arg: str) -> None:
    chat.session = chat.pg.session(arg or chat.default_persona)
    chat.printer(f"[now talking to {chat.session.persona.name}]")
    greet(chat)


def _steer(chat: TerminalChat, arg: str) -> None:
    current = dict(chat.options.get("steering") or {})
    if arg.lower() in ("off", "none", "0"):
        current = {}
    elif arg:
        current.update(parse_assignments(arg.split()))
        current = active_strengths(current)
        chat.pg.steering_for(current, "/steer")  # unknown trait or strength out of range: an error, nothing kept
    chat.options["steering"] = current or None
    shown = ", ".join(f"{t} {s:+g}" for t, s in sorted(current.items())) or "off"
    persona = active_strengths(chat.session.persona.steering)
    extra = f" (persona's own: {', '.join(f'{t} {s:+g}' for t, s in persona.items())})" if persona else ""
    chat.printer(f"[steering: {shown}{extra}]")


def _probes(chat: TerminalChat, arg: str) -> None:
    if chat.last is None or not chat.last.probes:
        chat.printer("[no readouts yet: send a message first]")
        return
    lines = ["  trait            reply  prompt  trust"]
    for trait, p in sorted(chat.last.probes.items()):
        rel = p.get("reliability") or {}
        trust = "reliable" if rel.get("reliable") else ("unreliable" if rel else "unmeasured")
        auroc = f" (AUROC {rel['auroc']:.2f})" if rel.get("auroc") is not None else ""
        mean = "—" if p.get("mean") is None else f"{p['mean']:+.2f}"
        lines.append(f"  {trait:<15} {mean:>6} {p['prompt_last']:+7.2f}  {trust}{auroc}")
    chat.printer(
        "\n".join(lines) + "\n  (z units: 0 = typical assistant reply, 1 = one standard deviation toward the trait)"
    )


def _policy(chat: TerminalChat, arg: str) -> None:
    pg = chat.pg
    if arg.lower() == "off":
        pg.policies = PolicyHolder(None, pg.catalog)
    elif arg.lower() == "default":
        pg.policies = PolicyHolder(catalog=pg.catalog)
    elif arg:
        path = Path(arg).expanduser()
        if not path.is_file():
            raise PlaygroundError(f"{path}: no such policy file")
        try:
            pg.policies = PolicyHolder(path, pg.catalog)
        except ValidationError as exc:
            raise PlaygroundError(f"the policy in force is unchanged; {path} has problems:\n{exc}") from None
    policy = pg.policy_for(chat.session.persona)
    rules = "; ".join(
        f"{s} {r.warn:g}/{r.act:g} {r.action}" if r.warn is not None and r.act is not None else f"{s} {r.action}"
        for s, r in policy.rules.items()
    )
    chat.printer(f"[policy '{policy.name}' ({policy.source}): {rules or 'no rules: the guard is off'}]")


_HANDLERS: dict[str, Callable[[TerminalChat, str], None]] = {
    "/help": _help,
    "/clear": _clear,
    "/undo": _undo,
    "/persona": _persona,
    "/steer": _steer,
    "/probes": _probes,
    "/policy": _policy,
}
