"""The "Lab" tab: components only; every handler adapts one function of ``playground.ui.lab``.

Mount it inside an enclosing Blocks/Tab context::

    with gr.Tab("Lab", id="lab"):
        build_lab_tab(pg)
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..backends.priority import JobCancelled
from ..errors import PlaygroundError
from . import lab
from .lab_narrow import ABOUT, NarrowLab
from .views import describe_error

INTRO = (
    "### Lab: shaping the character\n"
    "Four experiments from the research behind the playground, small enough to run live. "
    "Numbers are calibrated probe readouts (z, 0 = a typical assistant) and an independent judge that reads "
    "only the text. Full reports: `docs/ROLE_MODELS.md`, `docs/RANKING.md`, `docs/FINETUNE.md`, `docs/NARROW_BROAD.md`."
)


def _progress(progress: Any):
    return lambda fraction, text: progress(min(1.0, max(0.0, float(fraction))), desc=text)


def _fail(exc: Exception) -> gr.Error:
    return gr.Error(describe_error(exc))


def _owner(request: gr.Request | None) -> str:
    """Whose run it is: the page (Gradio session); API calls without one share a name."""
    return getattr(request, "session_hash", None) or "api"


def _cancelled(job: Any) -> str:
    waited = f"; it had given way to chats for {job.yielded_s:.0f} s" if job.yields else ""
    return f"■ Cancelled — nothing was kept from this run{waited}."


def build_lab_tab(pg) -> dict[str, Any]:
    """Create the Lab components in the current Gradio context; returns them by name (for tests).

    The tab owns the fine-tuning demo's model (a ``lab.FinetuneLab``), so each UI built has its own, and its
    running jobs (``lab.LabJobs``: every run gives way to chats, and each section's Cancel stops the page's own
    run)."""
    choices = [(label, pid) for pid, label in pg.catalog.list_personas()]
    ids = [pid for _, pid in choices]
    first = "assistant" if "assistant" in ids else (ids[0] if ids else None)
    funny = "pirate" if "pirate" in ids else first
    c: dict[str, Any] = {}
    gr.Markdown(INTRO)
    _render_roles(c, choices, first)
    _render_rank(c, choices, funny)
    _render_finetune(c)
    _render_narrow(c)
    jobs = lab.LabJobs(pg.foreground)
    _listen_roles_rank(c, pg, jobs)
    _listen_finetune(c, lab.FinetuneLab(), jobs)
    _listen_narrow(c, NarrowLab(), jobs)
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
            c["roles_cancel"] = gr.Button("Cancel", variant="stop", scale=1, elem_id="lab-roles-cancel")
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
            c["rank_cancel"] = gr.Button("Cancel", variant="stop", scale=1, elem_id="lab-rank-cancel")
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
            "The quick version takes about 2.5 minutes on two idle cores (the full one about 7); results are "
            "cached. Every Lab run pauses while anyone's chat is answered, and Cancel stops it."
        )
        with gr.Row():
            c["ft_mode"] = gr.Radio(["quick", "full"], value="quick", label="Version", scale=2)
            c["ft_force"] = gr.Checkbox(value=False, label="Run again (ignore the cache)", scale=1)
            c["ft_go"] = gr.Button("Run the fine-tuning demo", variant="primary", scale=1, elem_id="lab-ft-go")
            c["ft_cancel"] = gr.Button("Cancel", variant="stop", scale=1, elem_id="lab-ft-cancel")
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


def _render_narrow(c: dict[str, Any]) -> None:
    with gr.Accordion("4 · Narrow training, broad character?", open=False, elem_id="lab-narrow"):
        gr.Markdown(ABOUT)
        with gr.Row():
            c["nb_mode"] = gr.Radio(["quick", "full"], value="quick", label="Version", scale=2)
            c["nb_force"] = gr.Checkbox(value=False, label="Run again (ignore the cache)", scale=1)
            c["nb_go"] = gr.Button("Run narrow -> broad", variant="primary", scale=1, elem_id="lab-nb-go")
            c["nb_cancel"] = gr.Button("Cancel", variant="stop", scale=1, elem_id="lab-nb-cancel")
        c["nb_md"] = gr.Markdown(elem_id="lab-nb-table")
        c["nb_img"] = gr.Image(value=lab.shipped_plot("narrow_broad"), type="filepath", interactive=False,
                               label="Every probe's shift on unrelated questions", format="png")  # fmt: skip


# ---- handlers (adapters only)
def _wire_cancel(button: gr.Button, jobs: lab.LabJobs, kinds: tuple[str, ...]) -> None:
    def cancel(request: gr.Request):
        if any([jobs.cancel(_owner(request), kind) for kind in kinds]):
            gr.Info("Cancelling: the run stops at its next step (within a second or two).")
        else:
            gr.Info("Nothing of yours is running in this section.")

    # outside the queue and without a concurrency limit: a Cancel never waits behind the run it cancels
    button.click(cancel, None, None, queue=False, concurrency_limit=None, api_visibility="private")


def _listen_roles_rank(c: dict[str, Any], pg, jobs: lab.LabJobs) -> None:
    def run_roles(persona: str, n: float, tokens: float, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        with jobs.running(_owner(request), "roles", _progress(progress)) as (job, step):
            try:
                return lab.role_models_live(pg, persona, int(n), int(tokens), progress=step, job=job)
            except JobCancelled:
                return _cancelled(job), gr.skip()
            except PlaygroundError as exc:
                raise _fail(exc) from exc

    def run_rank(persona: str, n: float, targets: str, seed, message: str, request: gr.Request,
                 progress=gr.Progress()):  # noqa: B008  # fmt: skip
        with jobs.running(_owner(request), "rank", _progress(progress)) as (job, step):
            try:
                md, rows = lab.best_of_live(
                    pg, persona, message, int(n), targets, None if seed is None else int(seed), progress=step, job=job
                )
                return md, gr.Dataframe(value=rows, headers=lab.best_of_headers(pg, persona, targets))
            except JobCancelled:
                return _cancelled(job), gr.skip()
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
    _wire_cancel(c["roles_cancel"], jobs, ("roles",))
    _wire_cancel(c["rank_cancel"], jobs, ("rank",))


def _listen_narrow(c: dict[str, Any], nb: NarrowLab, jobs: lab.LabJobs) -> None:
    def run_nb(mode: str, force: bool, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        with jobs.running(_owner(request), "narrow", _progress(progress)) as (job, step):
            try:
                return nb.run(mode == "quick", bool(force), progress=step, job=job)
            except JobCancelled:
                return _cancelled(job), gr.skip()
            except PlaygroundError as exc:
                raise _fail(exc) from exc

    c["nb_go"].click(run_nb, [c["nb_mode"], c["nb_force"]], [c["nb_md"], c["nb_img"]], api_name="lab_narrow_broad",
                     concurrency_id="lab_finetune")  # fmt: skip
    _wire_cancel(c["nb_cancel"], jobs, ("narrow",))


def _listen_finetune(c: dict[str, Any], ft: lab.FinetuneLab, jobs: lab.LabJobs) -> None:
    def run_ft(mode: str, force: bool, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        with jobs.running(_owner(request), "finetune", _progress(progress)) as (job, step):
            try:
                return ft.finetune_live(mode == "quick", bool(force), progress=step, job=job)
            except JobCancelled:
                return _cancelled(job), gr.skip(), gr.skip()
            except PlaygroundError as exc:
                raise _fail(exc) from exc

    def ask_ft(mode: str, message: str, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        with jobs.running(_owner(request), "ask", _progress(progress)) as (job, step):
            try:
                return ft.ask_finetuned(message, mode == "quick", progress=step, job=job)
            except JobCancelled:
                gr.Warning(_cancelled(job))
                return gr.skip()
            except PlaygroundError as exc:
                raise _fail(exc) from exc

    c["ft_mode"].change(
        lambda mode: lab.finetune_config_text(mode == "quick"), c["ft_mode"], c["ft_config"], api_visibility="private"
    )
    c["ft_go"].click(run_ft, [c["ft_mode"], c["ft_force"]], [c["ft_md"], c["ft_img"], c["ft_loss"]],
                     api_name="lab_finetune", concurrency_id="lab_finetune")  # fmt: skip
    c["ft_ask"].click(
        ask_ft, [c["ft_mode"], c["ft_msg"]], c["ft_table"], api_name="lab_ask_finetuned", concurrency_id="lab_ask"
    )  # not queued behind a running demo: it says at once that the demo is busy
    _wire_cancel(c["ft_cancel"], jobs, ("finetune", "ask"))
