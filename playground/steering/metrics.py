"""Separation metrics shared by extraction, trait evals and guard screening.

AUROC: the chance that a random positive scores above a random negative (ties count half), 0.5 = no
separation. An empty side has no defined AUROC, so it is NaN rather than an error.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def auroc(pos: Sequence[float] | np.ndarray, neg: Sequence[float] | np.ndarray) -> float:
    """AUROC of scores ``pos`` (label 1) against ``neg`` (label 0); NaN when either side is empty."""
    from sklearn.metrics import roc_auc_score  # imported here: sklearn is slow to import and only reports need it

    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    return float(roc_auc_score(y, np.r_[np.asarray(pos), np.asarray(neg)]))


def threshold_at_fpr(neg: Sequence[float] | np.ndarray, fpr: float) -> float:
    """The lowest threshold ``t`` such that at most ``fpr`` of ``neg`` score strictly above it (flag = score > t):
    the ``floor(fpr * n) + 1``-th highest negative score. NaN when ``neg`` is empty."""
    neg = np.sort(np.asarray(neg, dtype=float))[::-1]
    if len(neg) == 0:
        return float("nan")
    allowed = int(np.floor(fpr * len(neg) + 1e-9))
    return float(neg[min(allowed, len(neg) - 1)])


def recall_at_fpr(pos: Sequence[float] | np.ndarray, neg: Sequence[float] | np.ndarray, fpr: float = 0.01) -> float:
    """Share of ``pos`` flagged at the threshold that flags at most ``fpr`` of ``neg`` (``threshold_at_fpr``)."""
    pos = np.asarray(pos, dtype=float)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    return float(np.mean(pos > threshold_at_fpr(neg, fpr)))
