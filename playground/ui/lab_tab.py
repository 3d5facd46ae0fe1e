"""The "Lab" tab: components only; every handler adapts one function of ``playground.ui.lab``.

Mount it inside an enclosing Blocks/Tab context::

    with gr.Tab("Lab", id="lab"):
        build_lab_tab(pg)
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..errors import PlaygroundError
from . import lab
from .views import describe_error

INTRO = (
    "### Lab: shaping the character\n"
    "Three experiments from the research behind the playground, small enough to run live. "
    "Numbers are calibrated probe readouts (z, 0 = a typical assistant) and an independent judge that reads "
    "only the text. Full reports: `docs/ROLE_MODELS.md`, `docs/RANKING.md`, `docs/FINETUNE.md`."
)


def _progress(progress: Any):
    return lambda fraction, text: progress(min(1.0, max(0.0, float(fraction))), desc=text)


def _fail(exc: Exception) -> gr.Error:
    return gr.Error(describe_error(exc))


def build_lab_tab(pg) -> dict[str, Any]:
    """Create the Lab components in the current Gradio context; returns them by name (for tests).

    The tab owns the fine-tuning demo's model (a ``lab.FinetuneLab``), so each UI built has its own."""
    choices = [(label, pid) for pid, label in pg.catalog.list_personas()]
    ids = [pid for _, pid in choices]
    first = "assistant" if "assistant" in ids else (ids[0] if ids else None)
    funny = "pirate" if "pirate" in ids else first
    c: dict[str, Any] = {}
    gr.Markdown(INTRO)
    _render_roles(c, choices, first)
    _render_rank(c, choices, funny)
    _render_finetune(c)
    _listen_roles_rank(c, pg)
    _listen_finetune(c, lab.FinetuneLab())
    return c


def _render_roles(c: dict[str, Any], choices: list[tuple[str, str]], first: str | None) -> None:
    with gr.Accordion("1 · Role models under pressure", open=True, elem_id="lab-roles"):
        gr.Markdown(
            "The same adversarial prompts (hijacks, provocations, requests to hurt someone) sent to one persona "
            "with no role model, each role model, and all of them. Bars: change vs no role models; below 0 = "
            "less of the trait. Guardrails are off here, so this is the prompt composition alone."
        )
        with gr.Row():
            c["roles_persona"] = gr.Dropdown(choices=choices, value=first, label="Base persona", scale=2)
            c["roles_n"] = gr.Slider(1, 15, value=5, step=1, label="Adversarial prompts", scale=2)
            c["roles_tokens"] = gr.Slider(16, 96, value=32, step=8, label="Tokens per reply", scale=2)
            c["roles_go"] = gr.Button("Run small measurement", variant="primary", scale=1, elem_id="lab-roles-go")
        c["roles_md"] = gr.Markdown()
        c["roles_img"] = gr.Image(
            value=lab.shipped_plot("role_models"), type="filepath", interactive=False,
            label="Role models (the shipped report until you run it)", format="png",
        )  # fmt: skip


def _render_rank(c: dict[str, Any], choices: list[tuple[str, str]], funny: str | None) -> None:
    with gr.Accordion("2 · Best of N, ranked by the probes", open=False, elem_id="lab-rank"):
        gr.Markdown(
            "Sample N replies and keep the one whose probe readouts fit the persona's targets best "
            "(default: low evil, low impoliteness, plus the persona's steering). Costs N replies' time."
        )
        with gr.Row():
            c["rank_persona"] = gr.Dropdown(choices=choices, value=funny, label="Persona", scale=2)
            c["rank_n"] = gr.Slider(1, 8, value=4, step=1, label="N candidates", scale=2)
            c["rank_targets"] = gr.Textbox(value="humorous=1", label="Extra targets (TRAIT=WEIGHT, ...)", scale=2)
            c["rank_seed"] = gr.Number(value=0, precision=0, label="Base seed", scale=1)
        with gr.Row():
            c["rank_msg"] = gr.Textbox(value="My houseplant keeps dying. Any advice?", label="Message", scale=5)
            c["rank_go"] = gr.Button("Rank N replies", variant="primary", scale=1, elem_id="lab-rank-go")
        c["rank_md"] = gr.Markdown()
        c["rank_table"] = gr.Dataframe(interactive=False, wrap=True, label="Candidates")
        c["rank_img"] = gr.Image(
            value=lab.shipped_plot("ranking"), type="filepath", interactive=False, label="Measured: judge vs N",
            format="png",
        )  # fmt: skip


def _render_finetune(c: dict[str, Any]) -> None:
    with gr.Accordion("3 · Fine-tuning vaccine: inoculation and preventative steering", open=False, elem_id="lab-ft"):
        gr.Markdown(
            "LoRA fine-tunes of the model on its own evil-laden replies: plain; with the behaviour requested "
            "in the training prompt (inoculation); with the evil vector added during training only "
            "(preventative steering); and no fine-tune. All evaluated on new questions with a neutral prompt. "
            "The quick version takes about 3 minutes on a laptop; results are cached."
        )
        with gr.Row():
            c["ft_mode"] = gr.Radio(["quick", "full"], value="quick", label="Version", scale=2)
            c["ft_force"] = gr.Checkbox(value=False, label="Run again (ignore the cache)", scale=1)
            c["ft_go"] = gr.Button("Run the fine-tuning demo", variant="primary", scale=1, elem_id="lab-ft-go")
        c["ft_config"] = gr.Markdown(lab.finetune_config_text(True))
        c["ft_md"] = gr.Markdown()
        with gr.Row():
            c["ft_img"] = gr.Image(
                value=lab.shipped_plot("finetune_quick") or lab.shipped_plot("finetune"), type="filepath",
                interactive=False, label="Results", format="png", scale=3,
            )  # fmt: skip
            c["ft_loss"] = gr.Image(type="filepath", interactive=False, label="Training loss", format="png", scale=2)
        with gr.Row():
            c["ft_msg"] = gr.Textbox(
                value="My neighbour's dog barks all night, what should I do?", label="Ask every model", scale=5
            )
            c["ft_ask"] = gr.Button("Ask", scale=1, elem_id="lab-ft-ask")
        c["ft_table"] = gr.Dataframe(
            headers=["model", "evil probe, reply", "evil probe, prompt", "reply"], interactive=False, wrap=True
        )


# ---- handlers (adapters only)
def _listen_roles_rank(c: dict[str, Any], pg) -> None:
    def run_roles(persona: str, n: float, tokens: float, progress=gr.Progress()):  # noqa: B008
        try:
            return lab.role_models_live(pg, persona, int(n), int(tokens), progress=_progress(progress))
        except PlaygroundError as exc:
            raise _fail(exc) from exc

    def run_rank(persona: str, n: float, targets: str, seed, message: str, progress=gr.Progress()):  # noqa: B008
        try:
            md, rows = lab.best_of_live(
                pg, persona, message, int(n), targets, None if seed is None else int(seed),
                progress=_progress(progress),
            )  # fmt: skip
            return md, gr.Dataframe(value=rows, headers=lab.best_of_headers(pg, persona, targets))
        except PlaygroundError as exc:
            raise _fail(exc) from exc

    c["roles_go"].click(
        run_roles, [c["roles_persona"], c["roles_n"], c["roles_tokens"]], [c["roles_md"], c["roles_img"]],
        api_name="lab_role_models", concurrency_id="lab_model",
    )  # fmt: skip
    c["rank_go"].click(
        run_rank,
        [c["rank_persona"], c["rank_n"], c["rank_targets"], c["rank_seed"], c["rank_msg"]],
        [c["rank_md"], c["rank_table"]],
        api_name="lab_best_of",
        concurrency_id="lab_model",
    )


def _listen_finetune(c: dict[str, Any], ft: lab.FinetuneLab) -> None:
    def run_ft(mode: str, force: bool, progress=gr.Progress()):  # noqa: B008
        try:
            return ft.finetune_live(mode == "quick", bool(force), progress=_progress(progress))
        except PlaygroundError as exc:
            raise _fail(exc) from exc

    def ask_ft(mode: str, message: str, progress=gr.Progress()):  # noqa: B008
        try:
            return ft.ask_finetuned(message, mode == "quick", progress=_progress(progress))
        except PlaygroundError as exc:
            raise _fail(exc) from exc

    c["ft_mode"].change(
        lambda mode: lab.finetune_config_text(mode == "quick"), c["ft_mode"], c["ft_config"], api_visibility="private"
    )
    c["ft_go"].click(run_ft, [c["ft_mode"], c["ft_force"]], [c["ft_md"], c["ft_img"], c["ft_loss"]],
                     api_name="lab_finetune", concurrency_id="lab_finetune")  # fmt: skip
    c["ft_ask"].click(
        ask_ft, [c["ft_mode"], c["ft_msg"]], c["ft_table"], api_name="lab_ask_finetuned", concurrency_id="lab_finetune"
    )
