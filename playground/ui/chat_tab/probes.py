"""The probe panel beside the chat: the reply's trait bars, its guardrail alerts, a per-token heatmap of one
trait, and the trend across turns. Clicking a reply in the chat shows that reply's readouts."""

from __future__ import annotations

import gradio as gr

from .. import plots
from ..chat_state import ChatState
from ..views import reply_panels, trend_panel, turn_for_message
from .parts import ChatParts, ProbePanel

UNITS = (
    "Units: calibrated z — 0 = a typical assistant token, +1 = one standard deviation "
    "toward the trait. Click a reply in the chat to see its readouts."
)


def render(traits: list[str], heat_default: str | None) -> ProbePanel:
    gr.Markdown("### Trait probes — this reply")
    bars = gr.HTML(plots.probe_bars_html({}), elem_id="probe-bars")
    alerts = gr.HTML("", elem_id="guard-alerts")
    heat_trait = gr.Dropdown(
        choices=traits, value=heat_default, label="Per-token heatmap of", elem_id="heat-trait", visible=bool(traits)
    )
    heat = gr.HTML(plots.token_heatmap_html([], [], ""), elem_id="probe-heatmap")
    gr.Markdown("### Across turns (mean per reply)")
    trend = gr.HTML(plots.trend_svg_html({}), elem_id="probe-trend")
    gr.Markdown(UNITS, elem_classes=["pp-keys"])
    return ProbePanel(bars, alerts, heat_trait, heat, trend)


def listen(p: ChatParts) -> None:
    panel = p.probes

    def show_turn(st: ChatState | None, trait: str, evt: gr.SelectData):
        turn = turn_for_message(st, evt.index if isinstance(evt.index, int) else evt.index[0])
        if st is None or turn is None:
            return gr.skip(), gr.skip(), gr.skip()
        return reply_panels(st, st.turns[turn].reply, trait, turn)

    p.convo.chatbot.select(
        show_turn, [p.state, panel.heat_trait], [panel.bars, panel.alerts, panel.heat], api_visibility="private"
    )

    def redraw_trait(st: ChatState | None, trait: str):
        live = st.last.reply if st is not None and st.last is not None else None
        _, _, h = reply_panels(st, live, trait)
        return h, trend_panel(st, trait, live)

    panel.heat_trait.change(
        redraw_trait, [p.state, panel.heat_trait], [panel.heat, panel.trend], api_visibility="private"
    )
