"""Fit the live trait probes jointly, so each reads its own trait and not "anything but the assistant".

Extraction gives, per trait, replies under eliciting and suppressing instructions; the neutral assistant's
replies (to the extraction questions and to everyday prompts) are shared. A probe is a unit direction at one
layer plus a neutral calibration. Methods (``METHODS``), all scored the same way:

- ``mean_diff``: eliciting minus suppressing replies of the trait (the steering direction; the old probe);
- ``vs_neutral``: eliciting replies minus the neutral assistant's;
- ``one_vs_rest``: eliciting replies minus the average of every other trait's eliciting replies and the neutral
  replies (each class weighted equally);
- ``orth_drift``: ``mean_diff`` with the persona_drift direction projected out;
- ``lda`` (the default): ``one_vs_rest`` whitened by the pooled within-class covariance, shrunk halfway to a
  scaled identity (``SHRINKAGE``): directions that vary a lot inside every class (topic, length, "role-play")
  are discounted.

Layer choice is cross-instruction: the folds are the trait's instruction pairs (question j used pair j mod k),
so every fold is scored on replies to instructions the fit never saw. The score of a layer is the smaller of two
held-out AUROCs of the response mean: the trait's replies vs neutral ones ("own") and vs the other traits'
eliciting replies ("specificity"); layers are smoothed with their neighbours and near-ties go to the earliest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .metrics import auroc

METHODS = ("mean_diff", "vs_neutral", "one_vs_rest", "orth_drift", "lda")
DEFAULT_METHOD = "lda"
SHRINKAGE = 0.5
DRIFT_AXIS = "persona_drift"
LAYER_MARGIN = 0.01  # smoothed scores this close to the best count as tied (earliest wins)
CV_FOLDS = 5  # instruction folds: pair p of a trait goes to fold p mod CV_FOLDS


@dataclass(frozen=True)
class ProbeData:
    """Per-reply response means, (n, n_layers, d) arrays, at ``layers``; ``*_folds`` give each reply's fold."""

    layers: tuple[int, ...]
    elicited: Mapping[str, np.ndarray]
    elicited_folds: Mapping[str, np.ndarray]
    suppressed: Mapping[str, np.ndarray]
    neutral: np.ndarray
    neutral_folds: np.ndarray
    suppressed_folds: Mapping[str, np.ndarray] | None = None  # None: one suppressed reply per elicited one

    @property
    def traits(self) -> list[str]:
        return list(self.elicited)

    def kept(self, trait: str, li: int, fold: int | None) -> tuple[np.ndarray, np.ndarray]:
        """(eliciting, suppressing) replies of ``trait`` at layer index ``li`` outside ``fold`` (None: all)."""
        pos, neg = self.elicited[trait][:, li], self.suppressed[trait][:, li]
        if fold is None:
            return pos, neg
        neg_folds = (self.suppressed_folds or self.elicited_folds)[trait]
        return pos[self.elicited_folds[trait] != fold], neg[neg_folds != fold]

    def n_folds(self) -> int:
        return int(max(int(f.max()) for f in self.elicited_folds.values()) + 1)


@dataclass(frozen=True)
class ProbeFit:
    trait: str
    method: str
    layer: int
    direction: np.ndarray  # unit, float32
    cv_auroc: float  # cross-instruction held-out: own replies vs neutral
    cv_specificity: float  # and vs the other traits' replies
    per_layer: dict[int, tuple[float, float]] = field(default_factory=dict, compare=False)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v) + 1e-12)


def directions_at(data: ProbeData, li: int, method: str, held_out: int | None = None) -> dict[str, np.ndarray]:
    """Unit directions of every trait at layer index ``li``, fit on every reply outside fold ``held_out``."""
    if method not in METHODS:
        raise ValueError(f"unknown probe method {method!r}; known: {', '.join(METHODS)}")
    traits = data.traits
    kept = {t: data.kept(t, li, held_out) for t in traits}
    pos = {t: kept[t][0].astype(np.float64) for t in traits}
    neg = {t: kept[t][1].astype(np.float64) for t in traits}
    neu = data.neutral[:, li] if held_out is None else data.neutral[data.neutral_folds != held_out, li]
    neu = neu.astype(np.float64)
    mu = {t: pos[t].mean(0) for t in traits}
    mean_diff = {t: mu[t] - neg[t].mean(0) for t in traits}
    out = {}
    for t in traits:
        rest = np.mean([mu[o] for o in traits if o != t] + [neu.mean(0)], axis=0)
        if method == "mean_diff":
            d = mean_diff[t]
        elif method == "vs_neutral":
            d = mu[t] - neu.mean(0)
        elif method == "one_vs_rest":
            d = mu[t] - rest
        elif method == "orth_drift":
            d = mean_diff[t]
            if t != DRIFT_AXIS and DRIFT_AXIS in mean_diff:
                g = _unit(mean_diff[DRIFT_AXIS])
                d = d - (d @ g) * g
        else:
            d = np.linalg.solve(_shrunk_covariance(pos, neg, neu), mu[t] - rest)
        out[t] = _unit(d).astype(np.float32)
    return out


def _shrunk_covariance(pos: Mapping[str, np.ndarray], neg: Mapping[str, np.ndarray], neu: np.ndarray) -> np.ndarray:
    groups = [*pos.values(), *neg.values(), neu]
    centred = np.concatenate([g - g.mean(0) for g in groups if len(g)])
    cov = centred.T @ centred / max(1, len(centred))
    scale = np.trace(cov) / cov.shape[0]
    return (1 - SHRINKAGE) * cov + SHRINKAGE * scale * np.eye(cov.shape[0])


def cross_instruction_scores(data: ProbeData, method: str) -> dict[str, np.ndarray]:
    """trait -> (n_layers, 2) held-out (own AUROC, specificity AUROC), averaged over instruction folds."""
    traits, k = data.traits, data.n_folds()
    scores = {t: np.zeros((len(data.layers), 2)) for t in traits}
    for li in range(len(data.layers)):
        per_fold: dict[str, list[tuple[float, float]]] = {t: [] for t in traits}
        for fold in range(k):
            out = {t: data.elicited_folds[t] == fold for t in traits}
            dirs = directions_at(data, li, method, fold)
            neutral = data.neutral[data.neutral_folds == fold, li]
            for t in traits:
                if not out[t].any():
                    continue  # this trait has no instruction in this fold
                w = dirs[t]
                own = data.elicited[t][out[t], li] @ w
                others = np.concatenate([data.elicited[o][out[o], li] for o in traits if o != t]) @ w
                per_fold[t].append((auroc(own, neutral @ w), auroc(own, others)))
        for t in traits:
            scores[t][li] = np.nanmean(per_fold[t], axis=0)
    return scores


def choose_layer(score: np.ndarray, layers: tuple[int, ...]) -> int:
    """Index of the layer whose min(own, specificity), averaged with its neighbours', is best; ties -> earliest.

    Only interior layers compete (from a fifth of the depth to the second-to-last readable one): at the edges
    the average would have one neighbour only, and the first layers carry the prompt's wording more than its
    meaning."""
    worst = score.min(axis=1)
    smooth = np.array([worst[max(0, i - 1) : i + 2].mean() for i in range(len(layers))])
    lo, hi = len(layers) // 5, max(len(layers) // 5, len(layers) - 2)
    candidates = list(range(lo, hi + 1))
    top = max(smooth[i] for i in candidates)
    return int(next(i for i in candidates if smooth[i] >= top - LAYER_MARGIN))


def fit_probes(data: ProbeData, method: str = DEFAULT_METHOD) -> dict[str, ProbeFit]:
    """One probe per trait: layer by cross-instruction score, direction refit on every reply at that layer."""
    scores = cross_instruction_scores(data, method)
    out = {}
    for t in data.traits:
        li = choose_layer(scores[t], data.layers)
        direction = directions_at(data, li, method)[t]
        out[t] = ProbeFit(
            trait=t,
            method=method,
            layer=data.layers[li],
            direction=direction,
            cv_auroc=round(float(scores[t][li, 0]), 4),
            cv_specificity=round(float(scores[t][li, 1]), 4),
            per_layer={
                l: (round(float(a), 4), round(float(s), 4)) for l, (a, s) in zip(data.layers, scores[t], strict=False)
            },
        )
    return out


def calibrate(direction: np.ndarray, neutral_rows: list[np.ndarray]) -> tuple[float, float]:
    """(mean, std) of the neutral replies' per-token projections: readout 0 = a typical assistant token."""
    proj = np.concatenate([rows @ direction for rows in neutral_rows if len(rows)])
    return float(proj.mean()), float(proj.std() + 1e-6)
