"""What the UI shows, as pure functions of a tab's ChatState (no events here): chat messages, the probe
panels of one reply, the status line, the header badge, the slider values of a persona, and errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..chat.session import Playground
from ..definitions.personas import Persona
from ..errors import PlaygroundError, ValidationError
from ..steering.probe_notes import probe_notes
from . import plots
from .chat_state import ChatState
from .live_reply import LiveReply
from .map_view import chat_map_html
from .probe_scale import HEAT_FLOOR, PanelScale, bar_values

UPDATE_INTERVAL_S = 0.04  # at most ~25 page updates per second while a reply streams
PANEL_INTERVAL_S = 0.25  # the probe panels (bars, alerts, heatmap) redraw at most 4 times a second meanwhile
FIRST_WORDS_WAIT_S = 0.1  # a message shows with its first words when they come this soon, else alone at once
NONE_TRAIT = "(none)"
QUEUED_MARK = "⏳ queued — will send when this reply ends"
METER_WARN, METER_FULL = 0.75, 0.9  # the context meter turns amber, then red, at these shares of the window


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
        elif live.cut:  # ended at the token limit, maybe mid-word: say so (▸ Continue writes on)
            text += f" … *⟨cut at {len(live.tokens)} tokens⟩*"
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
    for message in state.pending:  # sent while a reply was written: they follow it
        msgs.append({"role": "user", "content": f"{message}\n\n*{QUEUED_MARK}*"})
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


NO_PROBES = (
    "This model has no trait probes yet, so replies are not read. The banner at the top names the one command "
    "that makes them (python -m playground prepare)."
)


def reply_panels(
    state: ChatState | None,
    live: LiveReply | None,
    trait: str | None,
    turn: int | None = None,
    *,
    scale: PanelScale | None = None,
) -> tuple[str, str, str]:
    """Bars, inline guard alerts and heatmap for one reply; ``scale``: a bar axis and colour scale shared with
    other replies (the Compare tab), else each panel fits this reply. Each probe explains itself on hover."""
    if state is not None and not state.pg.probes:
        heat = plots.token_heatmap_html([], [], "", empty="No per-token readouts on this model (no trait probes).")
        return plots.probe_bars_html({}, empty=NO_PROBES), "", heat
    if state is None or live is None:
        return plots.probe_bars_html({}), "", plots.token_heatmap_html([], [], trait or "")
    thresholds = _thresholds(state, live)
    number = (turn if turn is not None else len(state.turns) - 1) + 1
    caption = f"Reply {number}" + (" (writing…)" if not live.done and not live.stopped else "")
    if live.blocked:
        caption += " — blocked"
    reliability = state.pg.probes.reliability()
    about = probe_notes(state.pg.catalog, reliability)
    bars = plots.probe_bars_html(
        live.means(),
        live.prompt_last(),
        thresholds,
        n_tokens=len(live.tokens),
        caption=caption,
        reliability=reliability,
        about=about,
        span=scale.span if scale else None,
    )
    trait = _heat_trait(live, trait)
    vmax = scale.vmax if scale else HEAT_FLOOR
    heat = plots.token_heatmap_html(live.tokens, live.series(trait), trait, vmax=vmax, about=about.get(trait, ""))
    return bars, plots.guard_alerts_html(live.events), heat


def panel_values(state: ChatState | None, live: LiveReply | None, trait: str | None) -> tuple[list, list]:
    """What one reply's panels must show (bar values, heatmap series): for ``probe_scale.shared_scale``."""
    if state is None or live is None:
        return [], []
    bars = bar_values(live.means(), live.prompt_last(), _thresholds(state, live))
    return bars, live.series(_heat_trait(live, trait))


def _thresholds(state: ChatState, live: LiveReply) -> dict[str, dict]:
    return plots.thresholds_from_policy(state.policy, state.room(measure=live.done))


def _heat_trait(live: LiveReply, trait: str | None) -> str:
    return trait if trait in live.traits else (live.traits[0] if live.traits else "")


def trend_panel(state: ChatState | None, trait: str | None, live: LiveReply | None = None) -> str:
    """The trait means per turn, and below them the persona map with the conversation's replies on it."""
    if state is None:
        return plots.trend_svg_html({})
    if not state.pg.probes:
        trend = plots.trend_svg_html({}, empty="No trend across turns on this model (no trait probes).")
    elif live is not None and not live.done:
        trend = plots.trend_svg_html(state.trend(len(state.turns) - 1), highlight=trait, live=live.means())
    else:
        trend = plots.trend_svg_html(state.trend(), highlight=trait)
    return trend + chat_map_html(state)


# What the status line says before the first token, by the reply's phase (LiveReply.phase).
PHASES = {
    "": "✎ Thinking…",
    "waiting": "⏳ Waiting for another chat to finish (one model serves everybody; yours is next in line)…",
    "measuring": "📏 Measuring this persona's typical readouts for the guardrails (once per persona, ~2 s)…",
}


def status_line(state: ChatState | None, live: LiveReply | None) -> str:
    if state is None or live is None:
        return ""
    if not live.done and not live.tokens and not live.stopped:
        return PHASES.get(live.phase, PHASES[""])
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


def model_banner(pg: Playground) -> str:
    """Markdown naming what the running model lacks and how to make it (empty for a prepared model)."""
    from ..chat.readiness import model_notices

    notices = model_notices(pg)
    if not notices:
        return ""
    return f"**⚠ {pg.backend.model_id} is not fully prepared:**\n\n" + "\n".join(f"- {n}" for n in notices)


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


def swipe_label(st: ChatState | None) -> str:
    """The counter between ← and →: which of the last message's replies is shown ("2/3"); '' with one."""
    last = st.last if st is not None else None
    return f"reply {last.shown + 1}/{last.count}" if last is not None and last.count > 1 else ""


def context_meter(st: ChatState | None, reserve: int | None = None) -> str:
    """The context meter: tokens of the context window the conversation takes (``ChatState.context_use``, with
    ``reserve`` kept for the next reply), a bar that turns amber then red near the limit, and how many of the
    oldest turns the model no longer sees."""
    if st is None:
        return ""
    try:
        use = st.context_use(reserve)
    except PlaygroundError:
        return ""
    level = "full" if use.share >= METER_FULL else "warn" if use.share >= METER_WARN else "ok"
    colour = {"ok": "#6366f1", "warn": "#d97706", "full": "#dc2626"}[level]
    width = min(100.0, 100 * use.share)
    dropped = (
        f" · <b>{use.dropped_turns} oldest turn(s) left out</b>: the model no longer sees them"
        if use.dropped_turns
        else ""
    )
    tip = "Tokens the conversation takes in the model's context window (system prompt, lore, the turns it sees)"
    return (
        f'<div class="pp-meter pp-meter-{level}" title="{tip}" style="font-size:0.85em">'
        f'<span style="display:inline-block;width:90px;height:7px;border-radius:4px;vertical-align:middle;'
        f'background:rgba(127,127,127,0.25)"><span style="display:block;height:100%;border-radius:4px;'
        f'width:{width:.0f}%;background:{colour}"></span></span> '
        f'<span style="color:{colour if level != "ok" else "inherit"}">context <b class="pp-meter-used">'
        f"{use.used:,}</b> / {use.n_ctx:,} tokens ({100 * use.share:.0f}%)</span>{dropped}</div>"
    )
