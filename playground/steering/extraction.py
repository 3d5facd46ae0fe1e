"""Extract a trait vector: replies under eliciting vs suppressing instructions, mean difference of
response-token activations per layer, layer choice by held-out separation, neutral calibration.

Method (after the persona-vectors paper, arXiv 2507.21509, adapted to a laptop CPU):
1. For each extraction question q_j, pair p = j mod n_pairs: a greedy reply under the eliciting
   instruction and one under the suppressing instruction of that pair, plus one reply from the
   neutral assistant (for calibration). These replies are data (extraction_replies.py): stored replies
   with a matching key are re-read instead of generated, so a re-extraction on another machine reads
   the same text.
2. Teacher-forced activations of every readable layer over the reply positions (the positions whose
   logits chose the reply tokens); one mean vector per reply and layer.
3. A pair is dropped when the two replies are identical or empty (the instruction had no effect).
4. Layer choice: fit the mean difference on the first 70% of questions, measure AUROC and effect size on
   the rest, and pick a layer by a rule that is robust to rounding (:func:`choose_probe_layer`): another
   CPU or llama.cpp build must pick the same layer. The final vector uses all kept pairs.
5. Calibration: mean and std of the neutral replies' per-token projections at every layer, and the
   median residual norm per layer (the yardstick for steering doses).
6. Steering: a short sweep (``steer_tuning``) picks the steering layer and what strength 1 means.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from tqdm import tqdm

from ..backends.base import Backend
from ..backends.compute_thread import run_on_compute_thread
from ..definitions.traits import TraitDefinition
from .extraction_replies import Reply, ReplySet, generate_replies, prompt_for, replies_key
from .metrics import auroc
from .strength import tune_steering
from .vectors import TraitVector

NEUTRAL_SYSTEM = "You are a helpful assistant. Answer clearly and briefly."


def reply_rows(backend: Backend, reply: Reply, layers: list[int]) -> dict[int, np.ndarray]:
    """Activations at the positions that chose each reply token: layer -> (n_reply, d).

    Read right after generating the reply, the backend can reuse the prompt's cached keys/values (exactly)."""
    start = len(reply.prompt) - 1
    hs = backend.hidden_states(reply.prompt + reply.tokens, layers, start=start)
    return {l: rows[: len(reply.tokens)] for l, rows in hs.items()}


# Layer choice margins (see choose_probe_layer). Held-out AUROC moves in steps of 1/(n_pos * n_neg) (1/36 with
# six held-out pairs), and a fork in one greedy reply on another CPU moves it by a step or two; effect sizes
# moved by up to ~5% between builds (docs/FINDINGS.md, "Numerics across CPUs").
AUROC_MARGIN = 0.06
EFFECT_MARGIN = 0.15


def choose_probe_layer(held: dict[int, dict[str, float]], n_layers: int) -> int:
    """The probe layer from held-out statistics per layer (``auroc``, ``effect``), robust to rounding.

    1. Only layers between 20% of depth and the third-to-last are considered, and of those only the ones whose
       AUROC is within ``AUROC_MARGIN`` of the best.
    2. Each is scored by its effect size averaged with its neighbours' (one noisy layer cannot win alone).
    3. Near-ties resolve to the earliest layer: the first whose smoothed effect is within ``EFFECT_MARGIN``
       (relative) of the best smoothed effect.
    """
    lo, hi = max(1, n_layers // 5), n_layers - 3
    candidates = [l for l in range(lo, hi + 1) if l in held]
    # a very shallow model (fewer than five layers) has no such band: its inner layers, else any
    candidates = candidates or [l for l in sorted(held) if 0 < l < n_layers - 1] or sorted(held)
    top_auroc = max(held[l]["auroc"] for l in candidates)
    eligible = [l for l in candidates if held[l]["auroc"] >= top_auroc - AUROC_MARGIN]

    def smoothed(l: int) -> float:
        window = [held[k]["effect"] for k in (l - 1, l, l + 1) if k in held]
        return float(np.mean(window))

    scores = {l: smoothed(l) for l in eligible}
    top = max(scores.values())
    return next(l for l in eligible if scores[l] >= top - EFFECT_MARGIN * abs(top))


def extract_trait(
    backend: Backend,
    trait: TraitDefinition,
    *,
    max_tokens: int = 40,
    neutral_system: str = NEUTRAL_SYSTEM,
    tune_questions: int = 3,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    replies: ReplySet | None = None,
) -> TraitVector:
    """Extract, calibrate and tune one trait vector (see the module docstring); ``replies`` (e.g. the stored ones)
    are read instead of generating new ones when they were made for this model, trait text and length."""
    return extract_with_replies(
        backend,
        trait,
        max_tokens=max_tokens,
        neutral_system=neutral_system,
        tune_questions=tune_questions,
        progress=progress,
        log=log,
        replies=replies,
    )[0]


def extract_with_replies(
    backend: Backend,
    trait: TraitDefinition,
    *,
    max_tokens: int = 40,
    neutral_system: str = NEUTRAL_SYSTEM,
    tune_questions: int = 3,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    replies: ReplySet | None = None,
) -> tuple[TraitVector, ReplySet]:
    """:func:`extract_trait`, also returning the replies it read (to store beside the vector).

    The whole job runs on the model-compute thread, so its thousands of forward passes skip the hand-over.
    Replies are generated with the backend's reference numerics (chat may generate on a faster path)."""
    key = replies_key(backend.model_id, trait, neutral_system, max_tokens)
    if replies is not None and replies.key != key and log:
        log(f"{trait.name}: the stored replies were made for another model, trait text or length; generating new ones")
    usable = replies if replies is not None and replies.key == key else None

    def job() -> tuple[TraitVector, ReplySet]:
        started = time.perf_counter()
        data = usable or generate_replies(
            backend, trait, neutral_system=neutral_system, max_tokens=max_tokens, progress=progress
        )
        vec, sweep = _extract(backend, trait, data, neutral_system, tune_questions, progress, log, started, max_tokens)
        vec.extra["replies"] = {"key": data.key, "reused": usable is not None}
        return vec, replace(data, sweep=sweep)

    with backend.reference_decoding():
        return run_on_compute_thread(job)


def _read_replies(
    backend: Backend, trait: TraitDefinition, data: ReplySet, neutral_system: str, layers: list[int], progress: bool
) -> tuple[list[dict[int, np.ndarray]], list[dict[int, np.ndarray]], dict[int, list[np.ndarray]], int]:
    """Mean activations per kept pair (positive, negative), neutral rows per layer, and the dropped-pair count."""
    pairs = trait.pairs
    pos_means: list[dict[int, np.ndarray]] = []
    neg_means: list[dict[int, np.ndarray]] = []
    neutral_rows: dict[int, list[np.ndarray]] = {l: [] for l in layers}
    dropped = 0
    questions = trait.extraction_questions
    bar = tqdm(total=len(questions), desc=f"extract {trait.name}", disable=not progress, file=sys.stderr)
    for j, (question, replies) in enumerate(zip(questions, data.replies, strict=True)):
        eliciting, suppressing = pairs[j % len(pairs)]
        pos = Reply(prompt_for(backend, eliciting, question), replies.positive)
        neg = Reply(prompt_for(backend, suppressing, question), replies.negative)
        neu = Reply(prompt_for(backend, neutral_system, question), replies.neutral)
        pr = reply_rows(backend, pos, layers) if pos.tokens else {}
        nr = reply_rows(backend, neg, layers) if neg.tokens and neg.tokens != pos.tokens else {}
        if neu.tokens:
            for l, rows in reply_rows(backend, neu, layers).items():
                neutral_rows[l].append(rows)
        if not pr or not nr:
            dropped += 1
        else:
            pos_means.append({l: pr[l].mean(axis=0) for l in layers})
            neg_means.append({l: nr[l].mean(axis=0) for l in layers})
        bar.update(1)
    bar.close()
    return pos_means, neg_means, neutral_rows, dropped


def _extract(
    backend: Backend,
    trait: TraitDefinition,
    data: ReplySet,
    neutral_system: str,
    tune_questions: int,
    progress: bool,
    log: Callable[[str], None] | None,
    started: float,
    max_tokens: int,
) -> tuple[TraitVector, dict[str, list[list[int]]]]:
    layers = list(range(1, backend.n_layers - 1))  # block 0 can't be steered; the last l_out is output rows only
    questions = list(trait.extraction_questions)
    pos_means, neg_means, neutral_rows, dropped = _read_replies(backend, trait, data, neutral_system, layers, progress)
    if len(pos_means) < 4:
        raise RuntimeError(f"only {len(pos_means)} usable pairs for '{trait.name}'; the instructions had no effect")

    n = len(pos_means)
    n_fit = max(2, int(round(n * 0.7)))
    P = {l: np.stack([m[l] for m in pos_means]) for l in layers}
    N = {l: np.stack([m[l] for m in neg_means]) for l in layers}
    held: dict[int, dict[str, float]] = {}
    for l in layers:
        diff = P[l][:n_fit].mean(0) - N[l][:n_fit].mean(0)
        unit = diff / (np.linalg.norm(diff) + 1e-12)
        pp, nn = P[l][n_fit:] @ unit, N[l][n_fit:] @ unit
        spread = np.sqrt((pp.var() + nn.var()) / 2) + 1e-6
        held[l] = {"auroc": auroc(pp, nn), "effect": float((pp.mean() - nn.mean()) / spread)}
    best = choose_probe_layer(held, backend.n_layers)

    directions = {l: (P[l].mean(0) - N[l].mean(0)).astype(np.float32) for l in layers}
    calibration = {}
    resid_norm = {}
    for l in layers:
        rows = np.concatenate(neutral_rows[l], axis=0)
        proj = rows @ (directions[l] / (np.linalg.norm(directions[l]) + 1e-12))
        calibration[l] = (float(proj.mean()), float(proj.std() + 1e-6))
        resid_norm[l] = float(np.median(np.linalg.norm(rows, axis=1)))
    vec = TraitVector(
        directions=directions,
        trait=trait.name,
        model_id=backend.model_id,
        method="mean_diff_response",
        probe_layer=best,
        steer_layer=best,
        calibration=calibration,
    )
    choice = tune_steering(
        backend,
        vec,
        questions[:tune_questions],
        resid_norm,
        system=neutral_system,
        progress=progress,
        stored=data.sweep,
    )
    vec.steer_layer = choice.layer
    vec.steer_scale = {l: float(choice.fraction * resid_norm[l]) for l in layers}
    elapsed = time.perf_counter() - started
    vec.extra = {
        "pairs_used": n,
        "pairs_dropped": dropped,
        "max_tokens": max_tokens,
        "held_out": {str(l): held[l] for l in layers},
        "resid_norm": {str(l): round(resid_norm[l], 4) for l in layers},
        "steering": choice.to_json(),
        "extract_seconds": round(elapsed, 1),
        "backend": backend.name,
    }
    if log:
        log(
            f"{trait.name}: probe layer {best} (held-out AUROC {held[best]['auroc']:.2f}, "
            f"effect {held[best]['effect']:.1f}); steer layer {choice.layer}, strength 1 = "
            f"{choice.fraction:g} x residual norm; {n} pairs used, {dropped} dropped; {elapsed:.1f}s"
        )
    return vec, choice.replies
