"""What the UI shows, as pure functions of a tab's ChatState (no events here): chat messages, the probe
panels of one reply, the status line, the header badge, the slider values of a persona, and errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..chat.session import Playground
from ..definitions.personas import Persona
from ..errors import PlaygroundError, ValidationError
from . import plots
from .chat_state import ChatState
from .live_reply import LiveReply

UPDATE_INTERVAL_S = 0.04  # at most ~25 page updates per second while a reply streams
PANEL_INTERVAL_S = 0.25  # the probe panels (bars, alerts, heatmap) redraw at most 4 times a second meanwhile
FIRST_WORDS_WAIT_S = 0.1  # a message shows with its first words when they come this soon, else alone at once
NONE_TRAIT = "(none)"


def chat_messages(state: ChatState | None) -> list[dict[str, Any]]:
    """The chatbot value: greeting, then each exchange; guard alerts follow their reply as a titled note."""
    if state is None:
        return []
    greeting = state.session.greeting
    msgs: list[dict[str, Any]] = [{"role": "assistant", "content": greeting}] if greeting else []
    for rec in state.turns:
        msgs.append({"role": "user", "content": rec.user})
        live = rec.reply
        text = live.text or ("…" if not live.done and not live.stopped else "")
        if live.stopped:
            text += " ■"
        msgs.append({"role": "assistant", "content": text})
        if live.events:
            acted = [e for e in live.events if e.get("level") == "act"]
            title = (
                f"⚑ Guardrail: {', '.join(sorted({e['action'] + ' on ' + e['signal'] for e in acted}))}"
                if acted
                else f"⚠ Guardrail warning: {', '.join(sorted({e['signal'] for e in live.events}))}"
            )
            msgs.append(
                {
                    "role": "assistant",
                    "content": plots.guard_alert_markdown(live.events),
                    "metadata": {"title": title, "status": "done"},
                }
            )
    return msgs


def turn_for_message(state: ChatState | None, index: int) -> int | None:
    """Which turn a chatbot message index belongs to (None for the greeting)."""
    if state is None:
        return None
    i = index - (1 if state.session.greeting else 0)
    if i < 0:
        return None
    for t, rec in enumerate(state.turns):
        size = 3 if rec.reply.events else 2
        if i < size:
            return t
        i -= size
    return None


def reply_panels(
    state: ChatState | None, live: LiveReply | None, trait: str | None, turn: int | None = None
) -> tuple[str, str, str]:
    """Bars, inline guard alerts and heatmap for one reply."""
    if state is None or live is None:
        return plots.probe_bars_html({}), "", plots.token_heatmap_html([], [], trait or "")
    thresholds = plots.thresholds_from_policy(state.policy, state.room(measure=live.done))
    number = (turn if turn is not None else len(state.turns) - 1) + 1
    caption = f"Reply {number}" + (" (writing…)" if not live.done and not live.stopped else "")
    if live.blocked:
        caption += " — blocked"
    bars = plots.probe_bars_html(
        live.means(),
        live.prompt_last(),
        thresholds,
        n_tokens=len(live.tokens),
        caption=caption,
        reliability=state.pg.probes.reliability(),
    )
    trait = trait if trait in live.traits else (live.traits[0] if live.traits else "")
    heat = plots.token_heatmap_html(live.tokens, live.series(trait), trait)
    return bars, plots.guard_alerts_html(live.events), heat


def trend_panel(state: ChatState | None, trait: str | None, live: LiveReply | None = None) -> str:
    if state is None:
        return plots.trend_svg_html({})
    if live is not None and not live.done:
        return plots.trend_svg_html(state.trend(len(state.turns) - 1), highlight=trait, live=live.means())
    return plots.trend_svg_html(state.trend(), highlight=trait)


def status_line(state: ChatState | None, live: LiveReply | None) -> str:
    if state is None or live is None:
        return ""
    if live.stopped:
        return f"■ Stopped after {len(live.tokens)} tokens; the partial reply stays in the conversation."
    if not live.done:
        return f"✎ Writing… {len(live.tokens)} tokens (Esc stops)"
    result = live.result or {}
    timing = result.get("timing", {})
    parts = [
        f"✓ {len(result.get('tokens', []))} tokens · first token {timing.get('first_token_s', 0):.2f} s · "
        f"{timing.get('tokens_per_s', 0):.0f} tok/s"
    ]
    if result.get("steering"):
        parts.append("steering " + ", ".join(f"{k} {v:+g}" for k, v in result["steering"].items()))
    guard = result.get("guard", {})
    if guard.get("blocked"):
        parts.append("⚑ reply blocked by the guardrail")
    elif guard.get("attempts", 1) > 1:
        parts.append(f"⚑ written {guard['attempts']} times (regenerated by the guardrail)")
    parts += [f"• {n}" for n in result.get("notices", [])]
    return " · ".join(parts)


def badge(pg: Playground, state: ChatState | None) -> str:
    backend = pg.backend
    who = f" · persona **{state.persona.name}** (`{state.persona_id}`)" if state is not None else ""
    return f"model **{backend.model_id}** ({backend.name}, {backend.n_layers} layers){who}"


def persona_info(state: ChatState | None) -> str:
    if state is None:
        return ""
    p = state.persona
    roles = f" · role models: {', '.join(p.role_models)}" if p.role_models else ""
    return f"**{p.name}** — {p.description}{roles}"


def full_view(st: ChatState | None, trait: str | None, note: str = "") -> tuple:
    """The Chat tab's conversation views: messages, status (``note`` when given), bars, alerts, heatmap, trend
    and guard log."""
    live = st.last.reply if st is not None and st.last is not None else None
    b, a, h = reply_panels(st, live, trait)
    log = plots.guard_log_html(st.session.guard_log if st is not None else [])
    return (chat_messages(st), note or status_line(st, live), b, a, h, trend_panel(st, trait), log)


def persona_view(pg: Playground, st: ChatState | None, traits: list[str]) -> tuple:
    """Badge, info, policy table and slider/sampling values for a persona."""
    if st is None:
        return (badge(pg, None), "", plots.policy_html(None), *controls(None, traits))
    return (
        badge(pg, st),
        persona_info(st),
        plots.policy_html(st.policy, st.persona.name),
        *controls(st.persona, traits),
    )


def controls(p: Persona | None, traits: list[str]) -> list[float]:
    """Slider values for a persona: its steering per trait, then temperature and max tokens (defaults without
    a persona)."""
    if p is None:
        return [0.0] * len(traits) + [0.7, 160.0]
    steering = [float(p.steering.get(t, 0.0)) for t in traits]
    return steering + [float(p.sampling.temperature), float(p.sampling.max_tokens)]


def persona_controls(pg: Playground, persona_id: str, traits: list[str]) -> list[float]:
    """``controls`` of a persona by id (the defaults when it can't be loaded; the page then shows why)."""
    try:
        return controls(pg.catalog.persona(persona_id), traits)
    except PlaygroundError:
        return controls(None, traits)


def describe_error(exc: Exception) -> str:
    """A short, user-facing description of an error, one problem per line."""
    if isinstance(exc, ValidationError):
        return "\n".join(str(i) for i in exc.issues)
    return str(exc)


def error_md(message: str) -> str:
    return f"✗ **{message.splitlines()[0] if message else 'error'}**" + (
        "\n```\n" + message + "\n```" if "\n" in message else ""
    )


def read_upload(path: str, limit: int = 16 * 1024 * 1024) -> bytes:
    """An uploaded file's bytes, refusing anything over ``limit`` without reading it all."""
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise PlaygroundError(
            f"{Path(path).name}: over {limit // (1024 * 1024)} MiB; that is too big to be a chat or card"
        )
    return data


def single_exchange(st: ChatState) -> list[dict[str, Any]]:
    """The compare view shows just the latest exchange (no greeting)."""
    msgs = chat_messages(st)
    start = 1 if st.session.greeting else 0
    return msgs[start:]
