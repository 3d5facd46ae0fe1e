"""Evaluate trait vectors: probe separation on held-out questions and steering dose-response.

``python -m playground eval traits`` runs, per trait, on the trait's *evaluation* questions (never used
for extraction):

1. Probe separation: a greedy reply under an eliciting instruction and one under the neutral assistant
   prompt for every question. AUROC of the live probe's response mean, of its readout at the last prompt
   token (the prediction before any reply token), and of the independent judge on the same replies.
2. Dose-response: replies under the neutral prompt, steered at strengths -1, -0.5, 0, 0.5, 1, scored by
   the judge (text only, another model), by the unsteered probe over the text, and for coherence:
   NLL under the unsteered model, repeated 3-grams, distinct tokens, length.

Everything is greedy (temperature 0), so a rerun on the same machine and versions gives the same numbers.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..backends.base import Backend
from ..definitions.traits import TraitDefinition
from ..steering.extraction import NEUTRAL_SYSTEM
from ..steering.extraction_replies import Reply, generate_reply
from ..steering.judge import TraitJudge
from ..steering.metrics import auroc
from ..steering.probes import build_steering
from ..steering.strength import distinct_share, repeated_ngram_share
from ..steering.vectors import TraitVector
from .report import generated_by, machine, pyplot, report_dir, report_header, write_json, write_markdown

STRENGTHS = (-1.0, -0.5, 0.0, 0.5, 1.0)


@dataclass
class DosePoint:
    strength: float
    judge: float
    judge_sem: float
    probe: float  # unsteered probe readout over the steered text (calibrated z)
    nll: float
    repeat: float
    distinct: float
    length: float
    sample: str


@dataclass
class TraitEval:
    trait: str
    probe_layer: int
    steer_layer: int
    n_questions: int
    auroc_response: float
    auroc_prompt_last: float
    auroc_judge: float
    dose: list[DosePoint] = field(default_factory=list)
    seconds: float = 0.0


def _text(backend: Backend, tokens: Sequence[int]) -> str:
    return b"".join(backend.token_bytes(t) for t in tokens).decode("utf-8", errors="replace")


def _readouts(backend: Backend, vec: TraitVector, reply: Reply) -> tuple[float, float]:
    """(response mean, last prompt token) of the calibrated probe, teacher-forced without steering."""
    layer = vec.probe_layer
    assert layer is not None
    tokens = reply.prompt + reply.tokens
    rows = backend.hidden_states(tokens, [layer])[layer]
    mean, std = vec.calibration[layer]
    z = (rows @ vec.unit(layer) - mean) / std
    start = len(reply.prompt) - 1
    return float(z[start : start + max(1, len(reply.tokens))].mean()), float(z[start])


def evaluate_trait(
    backend: Backend,
    vec: TraitVector,
    trait: TraitDefinition,
    judge: TraitJudge,
    *,
    n_questions: int = 20,
    dose_questions: int = 8,
    strengths: Sequence[float] = STRENGTHS,
    max_tokens: int = 40,
    progress: bool = True,
) -> TraitEval:
    started = time.perf_counter()
    questions = list(trait.evaluation_questions)[:n_questions]
    pairs = trait.pairs
    total = len(questions) + dose_questions * len(strengths)
    bar = tqdm(total=total, desc=f"eval {trait.name}", disable=not progress, file=sys.stderr)
    elicited: list[Reply] = []
    neutral: list[Reply] = []
    for j, q in enumerate(questions):
        elicited.append(generate_reply(backend, pairs[j % len(pairs)][0], q, max_tokens))
        neutral.append(generate_reply(backend, NEUTRAL_SYSTEM, q, max_tokens))
        bar.update(1)
    pos = [_readouts(backend, vec, r) for r in elicited]
    neg = [_readouts(backend, vec, r) for r in neutral]
    judged = judge.score([_text(backend, r.tokens) for r in elicited + neutral])
    result = TraitEval(
        trait=trait.name,
        probe_layer=int(vec.probe_layer or 0),
        steer_layer=int(vec.steer_layer or 0),
        n_questions=len(questions),
        auroc_response=auroc([p[0] for p in pos], [n[0] for n in neg]),
        auroc_prompt_last=auroc([p[1] for p in pos], [n[1] for n in neg]),
        auroc_judge=auroc(judged[: len(elicited)], judged[len(elicited) :]),
    )
    vectors = {trait.name: vec}
    for strength in strengths:
        steering = build_steering({trait.name: strength}, vectors) if strength else None
        replies, texts, probe, nll = [], [], [], []
        for q in questions[:dose_questions]:
            reply = generate_reply(backend, NEUTRAL_SYSTEM, q, max_tokens, steering=steering)
            replies.append(reply)
            texts.append(_text(backend, reply.tokens))
            probe.append(_readouts(backend, vec, reply)[0])
            nll.append(float(-backend.token_logprobs(reply.prompt + reply.tokens, len(reply.prompt)).mean()))
            bar.update(1)
        scores = judge.score(texts)
        result.dose.append(
            DosePoint(
                strength=float(strength),
                judge=float(scores.mean()),
                judge_sem=float(scores.std(ddof=1) / np.sqrt(len(scores))) if len(scores) > 1 else 0.0,
                probe=float(np.mean(probe)),
                nll=float(np.mean(nll)),
                repeat=float(np.mean([repeated_ngram_share(r.tokens) for r in replies])),
                distinct=float(np.mean([distinct_share(r.tokens) for r in replies])),
                length=float(np.mean([len(r.tokens) for r in replies])),
                sample=texts[0][:200],
            )
        )
    bar.close()
    result.seconds = round(time.perf_counter() - started, 1)
    return result


# ---- report ---------------------------------------------------------------------------------------


def _plot(results: Sequence[TraitEval], out_dir: Path) -> list[Path]:
    plt = pyplot()
    paths = []
    names = [r.trait for r in results]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(names)), 3.8))
    for k, (label, key) in enumerate(
        [
            ("probe, response mean", "auroc_response"),
            ("probe, last prompt token", "auroc_prompt_last"),
            ("judge (MiniLM anchors)", "auroc_judge"),
        ]
    ):
        ax.bar(x + (k - 1) * 0.27, [getattr(r, key) for r in results], 0.27, label=label)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xticks(x, names, rotation=20)
    ax.set_ylim(0.3, 1.02)
    ax.set_ylabel("AUROC (eliciting vs neutral)")
    ax.set_title("Held-out separation on evaluation questions")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    paths.append(out_dir / "traits-auroc.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    cols = min(4, len(results))
    rows = int(np.ceil(len(results) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.9 * rows), squeeze=False)
    for ax, r in zip(axes.flat, results, strict=False):
        s = [d.strength for d in r.dose]
        ax.errorbar(s, [d.judge for d in r.dose], yerr=[d.judge_sem for d in r.dose], marker="o", label="judge")
        ax.set_title(r.trait)
        ax.set_xlabel("steering strength")
        ax.set_ylabel("judge score", color="C0")
        twin = ax.twinx()
        twin.plot(s, [d.distinct for d in r.dose], color="C3", ls=":", marker="x", label="distinct tokens")
        twin.set_ylim(0, 1.05)
        twin.set_ylabel("distinct-token share", color="C3")
    for ax in list(axes.flat)[len(results) :]:
        ax.axis("off")
    fig.suptitle("Steering dose-response (neutral prompt, evaluation questions)")
    fig.tight_layout()
    paths.append(out_dir / "traits-dose-response.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def write_report(results: Sequence[TraitEval], out_dir: Path, *, command: str, model_id: str, backend: str) -> Path:
    """Markdown + PNG plots + raw JSON under ``out_dir``; returns the Markdown path."""
    out_dir = report_dir(out_dir)
    plots = _plot(results, out_dir)
    write_json(out_dir / "traits-eval.json", [asdict(r) for r in results])
    lines = [
        *report_header("Trait vectors: evaluation report"),
        f"Model `{model_id}`, backend `{backend}`, machine: {machine(processor=True)}.",
        f"{generated_by(command)} ({sum(r.seconds for r in results):.0f} s in all); greedy decoding, so a rerun "
        "reproduces it.",
        "",
        "Method: see `playground/evals/traits.py` and `docs/STEERING.md`. Questions are each trait's",
        "`evaluation` questions, never seen by extraction. The judge is all-MiniLM-L6-v2 similarity to the",
        "trait's anchor sentences: independent of the steered model, but coarse; its own AUROC column says",
        "how far to trust it for each trait.",
        "",
        "## Probe separation (eliciting instruction vs neutral assistant)",
        "",
        "| trait | probe layer | AUROC, response mean | AUROC, last prompt token | judge AUROC | questions |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.trait} | {r.probe_layer} | {r.auroc_response:.2f} | {r.auroc_prompt_last:.2f} | "
            f"{r.auroc_judge:.2f} | {r.n_questions} |"
        )
    lines += ["", f"![AUROC]({plots[0].name})", "", "## Steering dose-response", ""]
    lines += [
        "Judge score: mean over questions (higher = more of the trait, comparable within a trait only);",
        "probe: the unsteered probe read over the steered text; NLL: mean per-token negative",
        "log-likelihood of the reply under the unsteered model (higher = stranger text); repeat: share of",
        "repeated 3-grams; distinct: share of distinct tokens; length in tokens.",
        "",
        f"![dose-response]({plots[1].name})",
        "",
    ]
    for r in results:
        lines += [
            f"### {r.trait} (steered at layer {r.steer_layer})",
            "",
            "| strength | judge | probe | NLL | repeat | distinct | length | first reply |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for d in r.dose:
            sample = d.sample.replace("|", "\\|").replace("\n", " ")
            lines.append(
                f"| {d.strength:+g} | {d.judge:+.3f} ± {d.judge_sem:.3f} | {d.probe:+.2f} | {d.nll:.2f} | "
                f"{d.repeat:.2f} | {d.distinct:.2f} | {d.length:.0f} | {sample} |"
            )
        slope = np.polyfit([d.strength for d in r.dose], [d.judge for d in r.dose], 1)[0]
        lines += ["", f"Judge slope: {slope:+.3f} per unit of strength. Run time {r.seconds:.0f} s.", ""]
    return write_markdown(out_dir / "TRAITS_EVAL.md", "\n".join(lines) + "\n")


def evaluate_traits(
    backend: Backend,
    vectors: dict[str, TraitVector],
    traits: Sequence[TraitDefinition],
    *,
    log: Callable[[str], None] | None = None,
    **options: object,
) -> list[TraitEval]:
    results = []
    for trait in traits:
        if trait.name not in vectors:
            raise KeyError(trait.name)
        r = evaluate_trait(backend, vectors[trait.name], trait, TraitJudge(trait), **options)  # type: ignore[arg-type]
        if log:
            slope = np.polyfit([d.strength for d in r.dose], [d.judge for d in r.dose], 1)[0]
            log(
                f"{r.trait}: AUROC response {r.auroc_response:.2f}, prompt-last {r.auroc_prompt_last:.2f}, "
                f"judge {r.auroc_judge:.2f}; judge slope {slope:+.3f}/strength; {r.seconds:.0f}s"
            )
        results.append(r)
    return results
