"""Extract a trait vector: replies under eliciting vs suppressing instructions, mean difference of
response-token activations per layer, layer choice by held-out separation, neutral calibration.

Method (after the persona-vectors paper, arXiv 2507.21509, adapted to a laptop CPU):
1. For each extraction question q_j, pair p = j mod n_pairs: a greedy reply under the eliciting
   instruction and one under the suppressing instruction of that pair, plus one reply from the
   neutral assistant (for calibration).
2. Teacher-forced activations of every readable layer over the reply positions (the positions whose
   logits chose the reply tokens); one mean vector per reply and layer.
3. A pair is dropped when the two replies are identical or empty (the instruction had no effect).
4. Layer choice: fit the mean difference on the first 70% of questions, measure AUROC on the rest,
   pick the best layer (ties broken by effect size). The final vector uses all kept pairs.
5. Calibration: mean and std of the neutral replies' per-token projections at every layer, and the
   median residual norm per layer (the yardstick for steering doses).
6. Steering: a short sweep (``steer_tuning``) picks the steering layer and what strength 1 means.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from .backends.base import Backend, Steering
from .chat_template import Message
from .compute_thread import run_on_compute_thread
from .personas import Sampling
from .steer_tuning import tune_steering
from .traits import TraitDefinition
from .vectors import TraitVector

NEUTRAL_SYSTEM = "You are a helpful assistant. Answer clearly and briefly."


@dataclass
class Reply:
    prompt: list[int]
    tokens: list[int]


def generate_reply(
    backend: Backend, system: str, question: str, max_tokens: int, *, steering: Steering | None = None
) -> Reply:
    """A greedy reply to one question under one system prompt."""
    text = backend.template.render([Message("system", system), Message("user", question)])
    prompt = backend.tokenize(text)
    sampling = Sampling(temperature=0.0, max_tokens=max_tokens, repeat_penalty=1.1, seed=0)
    tokens = [step.token for step in backend.stream(prompt, sampling, steering=steering)]
    return Reply(prompt, tokens)


def reply_rows(backend: Backend, reply: Reply, layers: list[int]) -> dict[int, np.ndarray]:
    """Activations at the positions that chose each reply token: layer -> (n_reply, d).

    Read right after generating the reply, the backend can reuse the prompt's cached keys/values (exactly)."""
    start = len(reply.prompt) - 1
    hs = backend.hidden_states(reply.prompt + reply.tokens, layers, start=start)
    return {l: rows[: len(reply.tokens)] for l, rows in hs.items()}


def _auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    return float(roc_auc_score(y, np.r_[pos, neg]))


def extract_trait(
    backend: Backend,
    trait: TraitDefinition,
    *,
    max_tokens: int = 40,
    neutral_system: str = NEUTRAL_SYSTEM,
    tune_questions: int = 3,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> TraitVector:
    """Extract, calibrate and tune one trait vector (see the module docstring).

    The whole job runs on the model-compute thread, so its thousands of forward passes skip the hand-over.
    Replies are generated with the backend's reference numerics, so a re-extraction reproduces the shipped
    vectors exactly (chat may generate on a faster path that differs in rounding)."""
    with backend.reference_decoding():
        return run_on_compute_thread(
            lambda: _extract(backend, trait, max_tokens, neutral_system, tune_questions, progress, log)
        )


def _extract(
    backend: Backend,
    trait: TraitDefinition,
    max_tokens: int,
    neutral_system: str,
    tune_questions: int,
    progress: bool,
    log: Callable[[str], None] | None,
) -> TraitVector:
    started = time.perf_counter()
    layers = list(range(1, backend.n_layers - 1))  # block 0 can't be steered; the last l_out is output rows only
    questions = list(trait.extraction_questions)
    pairs = trait.pairs
    pos_means: list[dict[int, np.ndarray]] = []
    neg_means: list[dict[int, np.ndarray]] = []
    kept_q: list[int] = []
    neutral_rows: dict[int, list[np.ndarray]] = {l: [] for l in layers}
    dropped = 0
    bar = tqdm(total=len(questions), desc=f"extract {trait.name}", disable=not progress, file=sys.stderr)
    for j, question in enumerate(questions):
        eliciting, suppressing = pairs[j % len(pairs)]
        # Each reply's activations are read right after it is generated, while its prompt is still cached.
        pos = generate_reply(backend, eliciting, question, max_tokens)
        pr = reply_rows(backend, pos, layers) if pos.tokens else {}
        neg = generate_reply(backend, suppressing, question, max_tokens)
        nr = reply_rows(backend, neg, layers) if neg.tokens and neg.tokens != pos.tokens else {}
        neu = generate_reply(backend, neutral_system, question, max_tokens)
        if neu.tokens:
            for l, rows in reply_rows(backend, neu, layers).items():
                neutral_rows[l].append(rows)
        if not pr or not nr:
            dropped += 1
        else:
            pos_means.append({l: pr[l].mean(axis=0) for l in layers})
            neg_means.append({l: nr[l].mean(axis=0) for l in layers})
            kept_q.append(j)
        bar.update(1)
    bar.close()
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
        held[l] = {"auroc": _auroc(pp, nn), "effect": float((pp.mean() - nn.mean()) / spread)}
    lo, hi = max(1, backend.n_layers // 5), backend.n_layers - 3
    best = max(range(lo, hi + 1), key=lambda l: (round(held[l]["auroc"], 3), held[l]["effect"]))

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
        backend, vec, questions[:tune_questions], resid_norm, system=neutral_system, progress=progress
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
    return vec
