"""``chat`` (interactive, or one message with ``--json``) and ``score`` (probe readouts over a given reply)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..definitions.personas import DEFAULT_PERSONA
from ..errors import PlaygroundError
from ..guard.policy import describe_guard_event
from ..steering.request import parse_steer_args
from .chat_commands import HELP, TerminalChat, as_message, greet, is_command, run_command
from .common import Subcommands, add_model_args, sampling_options


def register(sub: Subcommands) -> None:
    chat = sub.add_parser("chat", help="chat with a persona (interactive, or one message with --json)")
    chat.add_argument("--persona", default=DEFAULT_PERSONA, help="persona id or path to a persona YAML file")
    add_model_args(chat)
    chat.add_argument("--max-tokens", type=int, default=None)
    chat.add_argument("--temperature", type=float, default=None)
    chat.add_argument("--seed", type=int, default=None)
    chat.add_argument(
        "--steer",
        action="append",
        default=[],
        metavar="TRAIT=STRENGTH",
        help="steer a trait for this reply (repeatable); strength -2..2: 0 off, 1 strong but coherent, <0 suppresses",
    )
    chat.add_argument("--policy", default=None, help="guardrail policy YAML (default: personas/policies/default.yaml)")
    chat.add_argument("--no-guard", action="store_true", help="turn the guardrails off for this chat")
    chat.add_argument("--json", action="store_true", help="answer MESSAGE once and print one JSON object")
    chat.add_argument(
        "--best-of",
        type=int,
        default=1,
        metavar="N",
        help="sample N replies (seeds SEED..SEED+N-1) and keep the one whose probes best fit the persona's "
        "trait targets (docs/RANKING.md)",
    )
    chat.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="TRAIT=WEIGHT",
        help="with --best-of: rank by this trait (repeatable; negative = less of it); "
        "default: evil=-1, impolite=-1 and the persona's steering",
    )
    chat.add_argument("message", nargs="?", help="the message (required with --json)")
    chat.set_defaults(handler=chat_command)

    score = sub.add_parser("score", help="probe readouts over a given reply (teacher-forced, unsteered)")
    score.add_argument("--persona", default=DEFAULT_PERSONA)
    add_model_args(score)
    score.add_argument("--reply", required=True, help="the assistant reply to score")
    score.add_argument("--json", action="store_true", help="print one JSON object (the default output)")
    score.add_argument("message", help="the user message the reply answers")
    score.set_defaults(handler=score_command)


def _policy_path(args: argparse.Namespace) -> str | None:
    if getattr(args, "no_guard", False):
        return ""  # no policy file: no rules
    return args.policy


def chat_command(args: argparse.Namespace) -> int:
    from ..chat.session import Playground

    pg = Playground(args.model, backend=args.backend, policy_path=_policy_path(args))
    options = sampling_options(args)
    options["steering"] = parse_steer_args(args.steer) or None
    ranking = {"best_of": args.best_of, "targets": args.target} if args.best_of != 1 or args.target else None
    if not args.json:
        return interactive(pg, args.persona, options, first=args.message, ranking=ranking)
    if not args.message:
        raise PlaygroundError('--json needs a MESSAGE argument, e.g. chat --json "Hello"')
    if ranking:
        from ..chat.ranking import ranked_reply

        result = ranked_reply(pg.session(args.persona), args.message, ranking, options).to_dict()
    else:
        result = pg.chat(args.persona, args.message, **options).to_dict()
    print(json.dumps(result, ensure_ascii=False))
    return 0


def score_command(args: argparse.Namespace) -> int:
    from ..chat.session import Playground

    pg = Playground(args.model, backend=args.backend)
    print(json.dumps(pg.score(args.persona, args.message, args.reply).to_dict(), ensure_ascii=False))
    return 0


def _print_ranked(session: Any, line: str, ranking: dict, options: dict) -> Any:
    from ..chat.ranking import describe, ranked_reply

    try:
        ranked = ranked_reply(session, line, ranking, options)
        print(f"{ranked.result.reply}\n{describe(ranked)}")
        return ranked.result
    except PlaygroundError as exc:
        print(f"\n[error] {exc}")
    except KeyboardInterrupt:
        print("\n[stopped]")
    return None


def _print_streamed(session: Any, line: str, options: dict) -> Any:
    result = None
    try:
        for event in session.stream(line, **options):
            for guard_event in event.guard:
                print(f" [guard: {describe_guard_event(guard_event)}] ", end="", flush=True)
            if event.kind == "token":
                print(event.text, end="", flush=True)
            elif event.kind == "reset":
                print(f"\n[rewriting the reply]\n{session.persona.name}: ", end="", flush=True)
            elif event.kind == "replace":
                print(f"\n{session.persona.name}: {event.text}", end="", flush=True)
            elif event.result is not None:
                result = event.result
                print()
                for notice in event.result.notices:
                    print(f"[notice] {notice}")
    except PlaygroundError as exc:
        print(f"\n[error] {exc}")
    except KeyboardInterrupt:
        print("\n[stopped]")
    return result


def interactive(pg: Any, persona: str, options: dict, first: str | None = None, ranking: dict | None = None) -> int:
    """The terminal chat: streamed replies with guard events, slash commands, Ctrl-C stops a reply."""
    chat = TerminalChat(pg, pg.session(persona), persona, options)
    print(f"[{chat.session.persona.name} on {pg.backend.model_id}; {HELP}]")
    greet(chat)
    pending = first
    while True:
        if pending is None:
            try:
                pending = input("you> ")
            except (EOFError, KeyboardInterrupt):
                print()
                return 0
        line, pending = pending.strip(), None
        if not line:
            continue
        if is_command(line):
            if not run_command(chat, line):
                return 0
            continue
        line = as_message(line)
        print(f"{chat.session.persona.name}: ", end="", flush=True)
        if ranking:
            result = _print_ranked(chat.session, line, ranking, options)
        else:
            result = _print_streamed(chat.session, line, options)
        chat.last = result or chat.last
