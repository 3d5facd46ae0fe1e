"""The guardrails accordion under the probe panel: the policy in effect for the persona (reloadable from its
file; a broken file keeps the previous policy) and the session's guard log."""

from __future__ import annotations

import gradio as gr

from .. import plots
from ..chat_state import ChatState
from ..views import error_md
from .parts import ChatParts, GuardPanel


def render() -> GuardPanel:
    with gr.Accordion("Guardrails: policy in effect and session log", open=False, elem_id="guard-accordion"):
        policy_view = gr.HTML(elem_id="policy")
        reload_policy = gr.Button("Reload the policy file", size="sm", elem_id="policy-reload")
        policy_status = gr.Markdown()
        log_view = gr.HTML(plots.guard_log_html([]), elem_id="guard-log")
    return GuardPanel(policy_view, reload_policy, policy_status, log_view)


def listen(p: ChatParts) -> None:
    pg = p.pg

    def do_reload_policy(st: ChatState | None):
        issues = pg.policies.reload()
        note = (
            error_md(
                "The policy file has problems; the previous policy stays in force.\n"
                + "\n".join(str(i) for i in issues)
            )
            if issues
            else "✓ Policy reloaded."
        )
        policy = st.policy if st is not None else pg.policies.policy
        return plots.policy_html(policy, st.persona.name if st else ""), note

    p.guard.reload_policy.click(
        do_reload_policy, p.state, [p.guard.policy_view, p.guard.policy_status], api_visibility="private"
    )
