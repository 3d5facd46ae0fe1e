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
