"""HTML/SVG renderings of probe readouts and guard events for the web UI (no Gradio imports).

Everything is plain HTML with CSS classes from ``PANEL_CSS``: cheap enough to redraw on every streamed
token, readable on a projector (colours come from CSS variables that follow the light/dark theme, and the
``pp-large`` class on the page scales the type), and hover text (``title``) gives exact values.
Readouts are calibrated z-scores: 0 = a typical assistant token, +1 = one standard deviation toward the trait.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from ..guard.policy import Policy, describe_guard_event
from ..steering.probe_direction import RELIABLE_AUROC
from .panel_css import PANEL_CSS as PANEL_CSS  # re-exported: the app adds it to the page
from .probe_scale import HEAT_FLOOR, bar_range, bar_values, heat_vmax

PALETTE = {
    "evil": "#d62728",
    "sycophantic": "#9467bd",
    "hallucinating": "#8c564b",
    "apathetic": "#7f7f7f",
    "humorous": "#ff7f0e",
    "impolite": "#e377c2",
    "optimistic": "#2ca02c",
    "persona_drift": "#1f77b4",
    "joyful": "#e6b800",
    "distressed": "#6b2d5c",
}
_EXTRA_COLOURS = ["#17becf", "#bcbd22", "#393b79", "#637939", "#8c6d31", "#843c39"]

ACTION_WORDS = {
    "flag": "flagged (shown and logged)",
    "cap": "capped: the projection is clamped at the threshold from the next token",
    "counter_steer": "counter-steered: the opposite of the trait is added from the next token",
    "regenerate": "regenerated: the reply was written again with counter-steering",
    "block": "blocked: the reply was stopped and replaced",
    "warn": "warning (nothing changed)",
}


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def trait_colour(trait: str, traits: Sequence[str] = ()) -> str:
    if trait in PALETTE:
        return PALETTE[trait]
    others = [t for t in traits if t not in PALETTE]
    index = others.index(trait) if trait in others else abs(hash(trait))
    return _EXTRA_COLOURS[index % len(_EXTRA_COLOURS)]


def _panel(body: str, extra_class: str = "") -> str:
    return f'<div class="pp-panel {extra_class}">{body}</div>'


def thresholds_from_policy(policy: Policy | None, room: Mapping[str, float] | None = None) -> dict[str, dict]:
    """{signal: {"warn", "act", "action"}} for drawing, with the persona's room added when known."""
    if policy is None:
        return {}
    out = {}
    for name, rule in policy.rules.items():
        extra = max(0.0, float((room or {}).get(name, 0.0))) if policy.baseline == "persona" else 0.0
        out[name] = {
            "warn": None if rule.warn is None else rule.warn + extra,
            "act": None if rule.act is None else rule.act + extra,
            "action": rule.action,
        }
    return out


def probe_bars_html(
    means: Mapping[str, float],
    prompt_last: Mapping[str, float] | None = None,
    thresholds: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    n_tokens: int = 0,
    caption: str = "",
    reliability: Mapping[str, Mapping[str, Any]] | None = None,
    about: Mapping[str, str] | None = None,
    span: tuple[float, float] | None = None,
    empty: str = "Probe readouts appear here while a reply streams.",
) -> str:
    """One bar per trait: the reply's mean readout, the prompt prediction (▼) and warn/act lines. A probe whose
    measured reliability is below the bar (``reliability[t]["reliable"] is False``) is greyed, with its numbers on
    hover. ``about``: per trait, what it means (hover, after the values); ``span``: the axis (lo, hi) to draw on,
    e.g. one shared with another panel (default: fitted to these values, ``probe_scale.bar_range``); ``empty``:
    what the panel says without readouts."""
    if not means:
        return _panel(f'<div class="pp-empty">{html.escape(empty)}</div>')
    thresholds = thresholds or {}
    prompt_last = prompt_last or {}
    lo, hi = span or bar_range(bar_values(means, prompt_last, thresholds))

    def pos(v: float) -> float:
        return (min(max(v, lo), hi) - lo) / (hi - lo) * 100

    zero = pos(0.0)
    rows = []
    for trait, value in means.items():
        rule = thresholds.get(trait) or {}
        warn, act = rule.get("warn"), rule.get("act")
        level = "act" if act is not None and value >= act else "warn" if warn is not None and value >= warn else ""
        cls = level or ("neg" if value < 0 else "")
        left, right = sorted((zero, pos(value)))
        parts = [
            f'<div class="pp-zero" style="left:{zero:.2f}%"></div>',
            f'<div class="pp-bar {cls}" style="left:{left:.2f}%;width:{max(right - left, 0.4):.2f}%"></div>',
        ]
        tip = [f"{trait}: mean {value:+.2f} z over {n_tokens} token(s)"]
        weak = _unreliable_note((reliability or {}).get(trait))
        if weak:
            tip.insert(0, weak)
        if trait in prompt_last:
            parts.append(f'<div class="pp-tick" style="left:{pos(prompt_last[trait]):.2f}%"></div>')
            tip.append(f"prompt prediction {prompt_last[trait]:+.2f}")
        if warn is not None:
            parts.append(f'<div class="pp-thr" style="left:{pos(warn):.2f}%"></div>')
            tip.append(f"warn at {warn:.1f}")
        if act is not None:
            parts.append(f'<div class="pp-thr act" style="left:{pos(act):.2f}%"></div>')
            tip.append(f"{rule.get('action', 'act')} at {act:.1f}")
        title = "; ".join(tip) + (f"\n\n{about[trait]}" if about and about.get(trait) else "")
        rows.append(
            f'<div class="pp-row{" unreliable" if weak else ""}" title="{_e(title)}" data-trait="{_e(trait)}">'
            f'<span class="pp-name">{_e(trait)}{"?" if weak else ""}</span><div class="pp-track">{"".join(parts)}</div>'
            f'<span class="pp-val">{value:+.1f}</span></div>'
        )
    step = 1 if hi - lo <= 8 else 2 if hi - lo <= 16 else 4
    ticks = "".join(
        f'<span style="left:{pos(v):.2f}%">{v:g}</span>'
        for v in range(int(lo) + (-int(lo) % step), int(hi) + 1, step)
        if lo <= v <= hi
    )
    head = f'<div class="pp-head"><span>{_e(caption)}</span><span>mean z over {n_tokens} token(s)</span></div>'
    axis = (
        f'<div class="pp-axis" data-lo="{lo:.2f}" data-hi="{hi:.2f}"><span></span>'
        f'<div class="pp-axis-inner">{ticks}</div><span></span></div>'
    )
    greyed = any(_unreliable_note((reliability or {}).get(t)) for t in means)
    legend = (
        '<div class="pp-legend"><i class="bar"></i>reply mean<i class="tick"></i>prompt prediction'
        '<i class="warn"></i>warn<i class="act"></i>act (guardrail)'
        + (
            '<span class="pp-weak">grey “?” = unreliable probe on this model (hover for its numbers)</span>'
            if greyed
            else ""
        )
        + "</div>"
    )
    return _panel(head + "".join(rows) + axis + legend)


def _unreliable_note(rel: Mapping[str, Any] | None) -> str:
    """The hover text of a probe measured below the reliability bar ('' when it is fine or unmeasured)."""
    if not rel or rel.get("reliable") is not False:
        return ""
    where = "held-out evaluation" if rel.get("source") == "heldout" else "cross-instruction check"
    return (
        f"unreliable on this model: AUROC {rel.get('auroc', 0):.2f}, specificity {rel.get('specificity', 0):.2f} "
        f"({where}; AUROC below {RELIABLE_AUROC:.2f})"
    )


def _heat_colour(value: float, vmax: float) -> str:
    share = min(abs(value) / vmax, 1.0) * 0.85
    rgb = "220,38,38" if value >= 0 else "37,99,235"
    return f"rgba({rgb},{share:.2f})"


def token_heatmap_html(
    tokens: Sequence[str],
    values: Sequence[float],
    trait: str,
    *,
    vmax: float = HEAT_FLOOR,
    about: str = "",
    empty: str = "The per-token heatmap appears here while a reply streams.",
) -> str:
    """The reply's tokens tinted by one trait's readout (red above a typical assistant, blue below), on a colour
    scale of ±``vmax`` (widened to the largest value); ``about``: what the trait means, on the legend's hover."""
    if not tokens or not values:
        return _panel(f'<div class="pp-empty">{_e(empty)}</div>')
    vmax = heat_vmax(values, vmax)
    spans = []
    for i, (tok, value) in enumerate(zip(tokens, values, strict=False)):
        shown = _e(tok).replace("\n", "↵\n")
        tip = f"token {i}: {tok!r} — {trait} {value:+.2f} z"
        colour = _heat_colour(value, vmax)
        strong = " hot" if abs(value) / vmax > 0.6 else ""
        spans.append(
            f'<span class="t{strong}" data-z="{value:.3f}" title="{_e(tip)}" style="background:{colour}">{shown}</span>'
        )
    name = f'<span class="pp-about" title="{_e(about)}">{_e(trait)}</span>' if about else _e(trait)
    scale = (
        f'<div class="pp-scale" data-vmax="{vmax:.2f}"><span>{-vmax:+.1f}</span><div class="grad"></div>'
        f"<span>{vmax:+.1f}</span><span>{name} z · hover a token for its value</span></div>"
    )
    return _panel(f'<div class="pp-heat">{"".join(spans)}</div>{scale}')


def trend_svg_html(
    trend: Mapping[str, Sequence[float]],
    *,
    highlight: str | None = None,
    live: Mapping[str, float] | None = None,
    empty: str = "The trend across turns appears after the first reply.",
) -> str:
    """A line per trait of its mean readout per turn; ``live`` adds the reply being written as a dashed point."""
    series = {t: list(v) for t, v in trend.items()}
    for t in live or {}:
        series.setdefault(t, [])
    n = max((len(v) for v in series.values()), default=0) + (1 if live else 0)
    if n == 0:
        return _panel(f'<div class="pp-empty">{_e(empty)}</div>')
    width, height, left, right, top, bottom = 440, 150, 28, 10, 8, 20
    all_values = [x for v in series.values() for x in v] + list((live or {}).values()) + [0.0]
    lo, hi = min(-1.0, min(all_values)), max(2.0, max(all_values))
    span = hi - lo

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (i / max(n - 1, 1)) * (width - left - right) if n > 1 else left + (width - left - right) / 2
        y = top + (hi - v) / span * (height - top - bottom)
        return x, y

    parts = []
    step = 1 if span <= 6 else 2 if span <= 12 else 4
    for g in range(int(lo) - int(lo) % step, int(hi) + 1, step):
        if lo <= g <= hi:
            _, y = xy(0, g)
            cls = "zero" if g == 0 else "grid"
            parts.append(f'<line class="{cls}" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
            parts.append(f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{g}</text>')
    for i in range(n):
        x, _ = xy(i, 0)
        label = f"{i + 1}" + ("…" if live and i == n - 1 else "")
        parts.append(f'<text x="{x:.1f}" y="{height - 5}" text-anchor="middle">{label}</text>')
    names = list(series)
    for trait in names:
        values = series[trait]
        colour = trait_colour(trait, names)
        width_px = 3 if trait == highlight else 1.6
        opacity = 1.0 if highlight in (None, trait) else 0.55
        points = [xy(i, v) for i, v in enumerate(values)]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="{width_px}" opacity="{opacity}" '
                f'points="{path}"/>'
            )
        for i, (x, y) in enumerate(points):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{width_px + 1}" fill="{colour}" opacity="{opacity}">'
                f"<title>{_e(trait)} turn {i + 1}: {values[i]:+.2f} z</title></circle>"
            )
        if live and trait in live:
            x, y = xy(n - 1, live[trait])
            if points:
                px, py = points[-1]
                parts.append(
                    f'<line x1="{px:.1f}" y1="{py:.1f}" x2="{x:.1f}" y2="{y:.1f}" stroke="{colour}" '
                    f'stroke-dasharray="3 3" stroke-width="{width_px}" opacity="{opacity}"/>'
                )
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{width_px + 1}" fill="none" stroke="{colour}" '
                f'opacity="{opacity}"><title>{_e(trait)} this reply so far: {live[trait]:+.2f} z</title></circle>'
            )
    svg = f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="trait readouts per turn">{"".join(parts)}</svg>'
    chips = "".join(
        f'<span class="pp-chip"><b style="background:{trait_colour(t, names)}"></b>{_e(t)}</span>' for t in names
    )
    return _panel(f'<div class="pp-trend">{svg}</div><div class="pp-legend">{chips}</div>')


def guard_alerts_html(events: Sequence[Mapping[str, Any]]) -> str:
    """Inline alerts for one reply: what fired, its value, the threshold and the action taken."""
    if not events:
        return ""
    items = []
    for ev in events:
        level = "act" if ev.get("level") == "act" else "warn"
        icon = "⚑" if level == "act" else "⚠"
        action = ACTION_WORDS.get(str(ev.get("action")), str(ev.get("action")))
        attempt = f" · attempt {int(ev['attempt']) + 1}" if ev.get("attempt") else ""
        detail = f"<br><small>{_e(action)}{attempt}</small>" if level == "act" else f" <small>{attempt}</small>"
        items.append(
            f'<div class="pp-alert {level}" title="{_e(action)}">{icon} <b>{_e(describe_guard_event(ev))}</b>'
            f"{detail}</div>"
        )
    return _panel(f'<div class="pp-alerts">{"".join(items)}</div>')


def guard_alert_markdown(events: Sequence[Mapping[str, Any]]) -> str:
    """The same alerts as plain lines, for the chat transcript."""
    lines = []
    for ev in events:
        icon = "⚑" if ev.get("level") == "act" else "⚠"
        lines.append(f"{icon} {describe_guard_event(ev)} — {ACTION_WORDS.get(str(ev.get('action')), '')}")
    return "\n\n".join(lines)


def guard_log_html(log: Sequence[Mapping[str, Any]]) -> str:
    """The session's guard events, newest first."""
    if not log:
        return _panel('<div class="pp-empty">No guardrail events in this session yet.</div>')
    rows = []
    for ev in reversed(log):
        where = "prompt" if ev.get("phase") == "prompt" else f"token {ev.get('token_index')}"
        rows.append(
            f"<tr><td class='num'>{_e(ev.get('turn', ''))}</td><td>{_e(ev.get('signal'))}</td>"
            f"<td class='num'>{float(ev.get('value', 0)):+.2f}</td>"
            f"<td class='num'>{float(ev.get('threshold', 0)):.2f}</td>"
            f"<td>{_e(where)}</td><td>{_e(ev.get('action'))}</td></tr>"
        )
    head = "<tr><th>turn</th><th>signal</th><th>value</th><th>threshold</th><th>where</th><th>action</th></tr>"
    return _panel(f'<table class="pp-table">{head}{"".join(rows)}</table>')


def policy_html(policy: Policy | None, persona_name: str = "") -> str:
    """The policy in force for the current persona: one row per signal."""
    if policy is None:
        return _panel('<div class="pp-empty">No persona selected.</div>')
    if not policy.rules:
        return _panel(f'<div class="pp-empty">Policy "{_e(policy.name)}" has no rules: guardrails are off.</div>')
    rows = []
    for name, rule in sorted(policy.rules.items()):
        warn = "—" if rule.warn is None else f"{rule.warn:g}"
        act = "—" if rule.act is None else f"{rule.act:g}"
        extra = f" ({rule.strength:g})" if rule.action in ("counter_steer", "regenerate") else ""
        rows.append(
            f"<tr><td>{_e(name)}</td><td class='num'>{warn}</td><td class='num'>{act}</td>"
            f"<td>{_e(rule.action)}{extra}</td><td>{_e(rule.phase)}</td></tr>"
        )
    head = "<tr><th>signal</th><th>warn</th><th>act</th><th>action</th><th>phase</th></tr>"
    base = (
        "thresholds count from the persona's own typical readout"
        if policy.baseline == "persona"
        else "thresholds count from a typical assistant (0)"
    )
    note = (
        f'<div class="pp-note">Policy <b>{_e(policy.name)}</b> ({_e(policy.source)})'
        f"{' with ' + _e(persona_name) + '’s overrides' if persona_name else ''}; {base}; "
        f"window {policy.window} tokens; prompt screening {'on' if policy.screen_prompt else 'off'}; "
        f"{policy.max_retries} regenerate attempt(s) before a block.</div>"
    )
    return _panel(f'<table class="pp-table">{head}{"".join(rows)}</table>{note}')
