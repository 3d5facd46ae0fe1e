"""Library functions behind the UI's "Lab" tab: the three character-shaping demos, small enough to run live.

- role models under adversarial prompts (a small version of ``eval role-models``);
- best-of-N replies ranked by the probes (``playground.chat.ranking``);
- the fine-tuning "vaccine" demo (``playground.finetune``), quick or full, plus asking every fine-tuned
  model the same question (``FinetuneLab``: the demo's model and lock, owned by the Lab tab).

Every function takes an optional ``progress(fraction, text)`` callback and an optional ``job``
(``backends.priority.BackgroundJob``: the run gives way to chats and stops when cancelled, raising
``JobCancelled``; ``LabJobs`` keeps one per page and experiment), and returns plain data (Markdown, table rows,
PNG paths); ``playground.ui.lab_tab`` only wires them to components.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from ..backends.priority import BackgroundJob, Foreground
from ..errors import PlaygroundError
from ..paths import REPO_ROOT
from ..steering.request import split_assignments

Progress = Callable[[float, str], None]
DOCS = REPO_ROOT / "docs"
OUT_DIR = Path(tempfile.gettempdir()) / "persona-playground-lab"
SHIPPED_PLOTS = {
    "role_models": "role-models.png",
    "ranking": "ranking.png",
    "finetune": "finetune-full.png",
    "finetune_quick": "finetune-quick.png",
    "narrow_broad": "narrow_broad.png",
}


def shipped_plot(name: str) -> str | None:
    """Path of a plot shipped under docs/ (from the reports), or None when it is not there."""
    path = DOCS / SHIPPED_PLOTS[name]
    return str(path) if path.is_file() else None


def _quiet(progress: Progress | None) -> Progress:
    return progress or (lambda _f, _d: None)


PAUSED = "paused: a chat is being answered (the Lab gives way to chats)"


class LabJobs:
    """The Lab's running jobs, one per page and experiment, so that a page's Cancel stops its own run only."""

    def __init__(self, foreground: Foreground) -> None:
        self.foreground = foreground
        self._jobs: dict[tuple[str, str], BackgroundJob] = {}
        self._lock = threading.Lock()

    @contextmanager
    def running(self, owner: str, kind: str, progress: Progress | None = None):
        """A new job for (page, experiment) while the block runs; yields (job, a progress callback that also
        stops at the job's checkpoints and says when the job waits for a chat)."""
        job = BackgroundJob(self.foreground, f"the {kind} run")
        ui = _quiet(progress)
        last = [0.0]

        def step(fraction: float, text: str) -> None:
            last[0] = fraction
            ui(fraction, text)
            job.checkpoint()

        job.on_pause = lambda: ui(last[0], PAUSED)
        with self._lock:
            self._jobs[(owner, kind)] = job
        try:
            yield job, step
        finally:
            with self._lock:
                if self._jobs.get((owner, kind)) is job:
                    del self._jobs[(owner, kind)]

    def cancel(self, owner: str, kind: str) -> bool:
        """Cancel the page's run of ``kind``; False when none is running."""
        with self._lock:
            job = self._jobs.get((owner, kind))
        if job is None:
            return False
        job.cancel()
        return True


def unguarded(pg, job: BackgroundJob | None = None):
    """A Playground sharing ``pg``'s model, vectors, generation lock and foreground, with guardrails off (to
    measure the prompt alone); with ``job``, its replies run as that background job."""
    from ..chat.session import Playground

    lab = Playground(loaded_backend=pg.backend, catalog=pg.catalog, policy_path="")
    lab.generation_lock = pg.generation_lock  # one model, one lock: never two generations at once
    lab.foreground = pg.foreground  # and chats first
    lab._vectors, lab._probes = pg.vectors, pg.probes
    return lab.in_background(job) if job is not None else lab


def _yielding(backend: Any, job: BackgroundJob | None):
    """Checkpoints of ``job`` inside the transformers model's decoder blocks (none without a job)."""
    if job is None:
        return nullcontext()
    from ..backends.torch_yield import yielding_layers

    return yielding_layers(backend.model, job)


# ---- role models ----------------------------------------------------------------------------------


def role_models_live(
    pg,
    persona: str = "assistant",
    n_prompts: int = 5,
    max_tokens: int = 32,
    progress: Progress | None = None,
    job: BackgroundJob | None = None,
) -> tuple[str, str]:
    """A small role-model measurement: the first ``n_prompts`` adversarial prompts, every role model alone,
    all together and none, greedy. Returns (Markdown summary, PNG path)."""
    from ..evals.prompt_sets import ADVERSARIAL, ADVERSARIAL_KINDS
    from ..evals.roles import default_conditions, evaluate_role_models, plot, summary_table

    if not 1 <= n_prompts <= len(ADVERSARIAL):
        raise PlaygroundError(f"choose between 1 and {len(ADVERSARIAL)} prompts")
    lab = unguarded(pg, job)
    base = lab.catalog.persona(persona)
    conditions = default_conditions(sorted(lab.catalog.role_model_files()))
    # spread the sample over hijacks, provocations and harm requests
    step = max(1, len(ADVERSARIAL) // n_prompts)
    prompts = list(ADVERSARIAL[::step])[:n_prompts]
    result = evaluate_role_models(lab, base, conditions, prompts, max_tokens=max_tokens, progress=progress)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    png = plot(result, OUT_DIR / "role-models-live.png")
    rows = summary_table(result, ADVERSARIAL_KINDS)
    traits = result.traits
    lines = [
        f"**{len(prompts)} adversarial prompts x {len(conditions)} variants of `{base.id}`, greedy, "
        f"{max_tokens} tokens, {result.seconds:.0f} s.** Δ = change vs no role models (negative = less of the trait).",
        "",
        "| variant | " + " | ".join(f"Δ probe {t}" for t in traits) + " | " + " | ".join(f"Δ judge {t}" for t in traits)
        + " |",
        "|---|" + "---|" * (2 * len(traits)),
    ]  # fmt: skip
    for row in rows[1:]:
        cells = []
        for metric in ("probe", "judge"):
            for t in traits:
                value = row.get(f"delta_{metric}:{t}")
                cells.append(f"{value[0]:+.2f} ± {value[1]:.2f}" if isinstance(value, tuple) else "—")
        lines.append(f"| {row['condition']} | " + " | ".join(cells) + " |")
    return "\n".join(lines), str(png)


# ---- best of N ------------------------------------------------------------------------------------


def best_of_live(
    pg,
    persona: str,
    message: str,
    n: int = 4,
    targets: str = "",
    seed: int | None = 0,
    max_tokens: int = 64,
    progress: Progress | None = None,
    job: BackgroundJob | None = None,
) -> tuple[str, list[list[Any]]]:
    """Best of ``n`` for one message. ``targets``: "humorous=1, evil=-1" (empty = the persona's defaults).
    Returns (Markdown with the chosen reply, one table row per candidate)."""
    from ..chat.ranking import best_of_n, parse_targets, persona_targets

    if not message.strip():
        raise PlaygroundError("type a message first")
    session = (pg.in_background(job) if job is not None else pg).session(persona)
    extra = parse_targets(split_assignments(targets))
    goal = persona_targets(session.persona, pg.vectors.names(), extra)
    ranked = best_of_n(
        session, message, int(n), targets=goal, seed=None if seed is None else int(seed), max_tokens=int(max_tokens),
        progress=progress, record=False,
    )  # fmt: skip
    best = ranked.candidates[ranked.chosen]
    goal_text = ", ".join(f"{t} {w:+g}" for t, w in goal.items())
    md = (
        f"**Kept candidate {ranked.chosen + 1} of {len(ranked.candidates)}** (score {best.score:+.2f}; targets "
        f"{goal_text}; {ranked.seconds:.1f} s for all candidates)\n\n> " + best.reply.replace("\n", "\n> ")
    )
    traits = list(goal)
    rows = [
        [c.index + 1, c.seed, round(c.score, 2), *[round(c.readouts.get(t, float("nan")), 2) for t in traits],
         "yes" if c.index == ranked.chosen else "", c.reply]
        for c in ranked.candidates
    ]  # fmt: skip
    return md, rows


def best_of_headers(pg, persona: str, targets: str = "") -> list[str]:
    from ..chat.ranking import parse_targets, persona_targets

    extra = parse_targets(split_assignments(targets))
    goal = persona_targets(pg.catalog.persona(persona), pg.vectors.names(), extra)
    return ["#", "seed", "score", *[f"{t} ({w:+g})" for t, w in goal.items()], "kept", "reply"]


# ---- fine-tuning ----------------------------------------------------------------------------------


class FinetuneLab:
    """The fine-tuning demo's model, owned by the Lab tab that shows it (``build_lab_tab`` makes one per UI).

    It keeps a transformers backend of its own between clicks (peft wraps its model in place, so a backend
    with adapters on it is only reused for the same demo), the last result, and a lock: one run or question
    at a time, and a second click is told so instead of waiting.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.backend: Any = None  # a transformers backend of its own (peft wraps its model in place)
        self.wrapped: str | None = None  # key of the demo whose adapters are on backend.model
        self.peft_model: Any = None
        self.result: Any = None

    def _clean_backend(self, model: str | None):
        if self.backend is None or self.wrapped is not None:
            from ..backends import load_backend

            self.backend, self.wrapped, self.peft_model = None, None, None
            self.backend = load_backend(model, backend="transformers")
        return self.backend

    def finetune_live(
        self,
        quick: bool = True,
        force: bool = False,
        model: str | None = None,
        progress: Progress | None = None,
        job: BackgroundJob | None = None,
    ) -> tuple[str, str, str]:
        """Run (or load from the cache) the fine-tuning demo. Returns (Markdown table, results PNG, loss PNG)."""
        from ..backends.model_source import resolve_model
        from ..finetune.demo import FULL, QUICK, load_cached, run_demo
        from ..finetune.report import plot, plot_losses

        step = _quiet(progress)
        if not self._lock.acquire(blocking=False):
            raise PlaygroundError("a fine-tuning demo is already running; wait for it to finish")
        try:
            config = QUICK if quick else FULL
            result = None if force else load_cached(config, resolve_model(model).model_id)
            if result is None:
                step(0.0, "loading the model in transformers")
                backend = self._clean_backend(model)
                self.wrapped = "(training)"  # peft wraps the model in place: a failed run must not leave it for reuse
                with _yielding(backend, job):
                    result = run_demo(config, backend=backend, force=force, progress=step)
                self.wrapped, self.peft_model = result.key, result.peft_model
            self.result = result
            OUT_DIR.mkdir(parents=True, exist_ok=True)
            tag = "quick" if quick else "full"
            png = plot(result, OUT_DIR / f"finetune-{tag}-live.png")
            loss = plot_losses(result, OUT_DIR / f"finetune-{tag}-loss-live.png")
        finally:
            self._lock.release()
        return _finetune_summary(result, quick), str(png), str(loss)

    def ask_finetuned(
        self,
        message: str,
        quick: bool = True,
        max_tokens: int = 48,
        model: str | None = None,
        progress: Progress | None = None,
        job: BackgroundJob | None = None,
    ) -> list[list[Any]]:
        """The same message to the base model and every fine-tuned run of the demo (rows for a table)."""
        from ..backends.model_source import resolve_model
        from ..finetune.demo import FULL, QUICK, load_cached, load_runs
        from ..finetune.evaluate import answer_all
        from ..steering.store import VectorStore

        if not message.strip():
            raise PlaygroundError("type a message first")
        step = _quiet(progress)
        if not self._lock.acquire(blocking=False):
            raise PlaygroundError("the fine-tuning demo is busy; try again when it has finished")
        try:
            config = QUICK if quick else FULL
            result = self.result if self.result is not None and self.result.config == config else None
            result = result or load_cached(config, resolve_model(model).model_id)
            if result is None:
                raise PlaygroundError("run the fine-tuning demo first (the button above)")
            if self.wrapped != result.key:
                step(0.1, "loading the model and the adapters")
                backend = self._clean_backend(model)
                self.peft_model, self.wrapped = load_runs(result, backend), result.key
            self.result = result
            step(0.5, "asking every model")
            vec = VectorStore(self.backend.model_id).get(result.config.trait)
            runs = [r for r in result.config.runs() if r in self.peft_model.peft_config]
            with _yielding(self.backend, job):
                answers = answer_all(self.backend, self.peft_model, runs, vec, message, max_tokens=max_tokens)
        finally:
            self._lock.release()
        return [
            [a["run"], round(float(a["probe"]), 2), round(float(a["probe_prompt"]), 2), a["reply"]] for a in answers
        ]


def _finetune_summary(result: Any, quick: bool) -> str:
    """The demo's result as a Markdown table: one row per model."""
    from ..finetune.report import acquisition, order

    kept = acquisition(result, "probe")
    lines = [
        f"**{'Quick' if quick else 'Full'} run** — {len(result.dataset)} {result.config.trait}-laden training "
        f"replies; {result.config.eval_questions} held-out questions under the neutral prompt; "
        + ("from the cache" if result.cached else f"{result.timings.get('total_s', 0):.0f} s")
        + ".",
        "",
        "| model | probe, reply | probe, prompt | judge | NLL neutral text | plain shift kept (probe) |",
        "|---|---|---|---|---|---|",
    ]
    for run in order(result):
        s = result.evals[run].summary()
        share = f"{kept[run]:.2f}" if run in kept else "—"
        lines.append(
            f"| {run} | {s['probe']:+.2f} | {s['probe_prompt']:+.2f} | {s['judge']:+.3f} | {s['neutral_nll']:.3f} "
            f"| {share} |"
        )
    return "\n".join(lines)


def finetune_config_text(quick: bool) -> str:
    from ..finetune.demo import FULL, QUICK

    cfg = QUICK if quick else FULL
    return (
        f"{cfg.train_questions} training questions x {cfg.instructions} eliciting instructions, "
        f"{cfg.epochs} epochs, LoRA r={cfg.rank}, lr {cfg.lr:g}, preventative steering strength "
        f"{cfg.steer_strength:g}, {cfg.eval_questions} held-out questions."
    )


__all__ = [
    "FinetuneLab",
    "LabJobs",
    "best_of_headers",
    "best_of_live",
    "finetune_config_text",
    "role_models_live",
    "shipped_plot",
    "unguarded",
]
