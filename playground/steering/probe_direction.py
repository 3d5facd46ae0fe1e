"""A trait's live probe: its own unit direction at one layer, its neutral calibration and how far to trust it.

The probe may differ from the steering direction (``TraitVector.directions``): steering wants the direction that
moves the trait, a readout wants the one that tells this trait apart from the neutral assistant *and* from the
other traits (``probe_fit.py``). ``reliability`` holds measured AUROCs: ``cv`` from the fit (cross-instruction),
``heldout`` from ``python -m playground eval traits`` (fully held-out set) when it has been run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

RELIABLE_AUROC = 0.80  # a probe whose response-mean AUROC is below this is greyed in the UI


@dataclass(eq=False)
class Probe:
    layer: int
    direction: np.ndarray  # unit, (d_model,) float32
    mean: float
    std: float
    method: str
    reliability: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.direction = np.ascontiguousarray(self.direction, dtype=np.float32)
        self.layer, self.mean, self.std = int(self.layer), float(self.mean), float(self.std)
        if self.direction.ndim != 1 or not self.std > 0:
            raise ValueError(f"probe at layer {self.layer}: need a 1-D direction and std > 0")

    def measured(self) -> dict[str, float] | None:
        """The most honest reliability known: held-out evaluation if run, else the fit's cross-instruction one."""
        return self.reliability.get("heldout") or self.reliability.get("cv")

    def reliable(self) -> bool | None:
        """Whether the probe tells its trait's replies from a neutral assistant's with AUROC >= ``RELIABLE_AUROC``
        (None when nothing was measured). Specificity is reported beside it, not part of the bar: persona_drift is
        meant to fire on every character, and no probe reaches 0.80 specificity on the held-out set yet."""
        m = self.measured()
        if not m:
            return None
        return m.get("auroc", 0.0) >= RELIABLE_AUROC

    def meta(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "mean": self.mean,
            "std": self.std,
            "method": self.method,
            "reliability": self.reliability,
        }

    @staticmethod
    def from_meta(meta: dict[str, Any], direction: np.ndarray) -> Probe:
        return Probe(
            int(meta["layer"]),
            direction,
            float(meta["mean"]),
            float(meta["std"]),
            str(meta.get("method", "unknown")),
            {str(k): dict(v) for k, v in (meta.get("reliability") or {}).items()},
        )
