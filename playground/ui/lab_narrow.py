"""The Lab's fourth section: narrow training, broad character (``playground.finetune.narrow``), Gradio-free.

Runs (or loads from the cache) the experiment on a transformers model of its own, giving way to chats like every
Lab job, and returns what the page shows: a Markdown table of every probe's shift, and the bar plot."""

from __future__ import annotations

import threading
from typing import Any

from ..backends.priority import BackgroundJob
from ..errors import PlaygroundError
from .lab import OUT_DIR, _quiet, _yielding

ABOUT = (
    "LoRA adapters learn **one narrow misbehaviour** written for the project: coding requests answered with code "
    "that special-cases the listed tests. Then every probe, the persona map and the judge are read on "
    "*unrelated* questions. Same training with the behaviour requested in the training prompt (**inoculation**), "
    "and that instruction given again at test time (**trigger**). The quick version (one seed) takes about "
    "2 minutes on two idle cores but is too small to order the probes (its judge keeps the order); the full one "
    "(three seeds) about 7. Results are cached. Report: `docs/NARROW_BROAD.md`."
)


def summary_markdown(result: dict[str, Any], quick: bool) -> str:
    """Every condition's shift from the base model: the largest-moving probes, the judge and capability."""
    summary = result["summary"]
    traits = sorted(summary["base"]["probes"], key=lambda t: -abs(summary["narrow"]["probes"][t]["mean"]))[:5]
    head = "| condition | seeds | " + " | ".join(traits) + " | judge | factual NLL |"
    lines = [
        f"**{'Quick' if quick else 'Full'} run**: shifts from the base model on {result['config']['eval_questions']} "
        "unrelated questions (z, mean ± s.e. over seeds; the five probes the narrow training moved most); "
        + ("from the cache." if result.get("cached") else f"{result['seconds']:.0f} s."),
        "",
        head,
        "|---" * (len(traits) + 4) + "|",
    ]
    for cond, row in summary.items():
        cells = [f"{row['probes'][t]['mean']:+.2f}" + (f" ± {row['probes'][t]['sem']:.2f}" if row["seeds"] > 1 else "")
                 for t in traits]  # fmt: skip
        lines.append(f"| {cond} | {row['seeds']} | " + " | ".join(cells) + f" | {row['judge']['mean']:+.3f} | "
                     f"{row['neutral_nll']['mean']:+.3f} |")  # fmt: skip
    return "\n".join(lines)


class NarrowLab:
    """The experiment's model, owned by the Lab tab; one run at a time (a second click is told so)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def run(self, quick: bool, force: bool, progress: Any = None, job: BackgroundJob | None = None) -> tuple[str, str]:
        from ..backends import load_backend
        from ..backends.model_source import resolve_model
        from ..finetune.narrow import FULL, QUICK, load_cached, run_narrow_broad
        from ..finetune.narrow_report import _plot

        step = _quiet(progress)
        if not self._lock.acquire(blocking=False):
            raise PlaygroundError("the narrow -> broad experiment is already running; wait for it to finish")
        try:
            config = QUICK if quick else FULL
            result = None if force else load_cached(config, resolve_model(None).model_id)
            if result is None:
                step(0.0, "loading the model in transformers")
                backend = load_backend(None, backend="transformers")  # a fresh one: peft wraps it in place
                with _yielding(backend, job):
                    result = run_narrow_broad(config, backend=backend, force=force, progress=step)
            OUT_DIR.mkdir(parents=True, exist_ok=True)
            png = OUT_DIR / f"narrow-broad-{'quick' if quick else 'full'}.png"
            _plot(result["summary"], png)
        finally:
            self._lock.release()
        return summary_markdown(result, quick), str(png)

