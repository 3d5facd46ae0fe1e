"""Calibrated trait probes and steering built from trait vectors.

Readout of trait t for generated token i: the activation of the trait's probe layer at the position
whose logits chose token i, projected on the unit vector, then z-scored against the same projection
over a neutral assistant's reply tokens (0 = typical assistant, 1 = one standard deviation above).
So ``per_token[0]`` is read at the last prompt token, which is also ``prompt_last``: the prediction
before any token is generated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..backends.base import Steering
from ..definitions.schema import STEER_LIMIT, did_you_mean
from ..errors import PlaygroundError
from .addition import steering_addition
from .probe_direction import Probe
from .request import active_strengths
from .vectors import TraitVector


class ProbeSet:
    """Live probes for several traits, each at its own layer."""

    def __init__(self, vectors: Mapping[str, TraitVector]):
        self.vectors = dict(vectors)
        self.readers: dict[str, Probe] = {}
        for trait, vec in self.vectors.items():
            probe = vec.readout()
            if probe is not None:
                self.readers[trait] = probe
        self.layers = sorted({p.layer for p in self.readers.values()})

    def __bool__(self) -> bool:
        return bool(self.readers)

    def score_one(self, hidden: Mapping[int, np.ndarray]) -> dict[str, float]:
        """Calibrated readouts of every trait for one position."""
        return {
            trait: float((float(np.dot(hidden[p.layer], p.direction)) - p.mean) / p.std)
            for trait, p in self.readers.items()
        }

    def score_rows(self, rows: Mapping[int, np.ndarray]) -> dict[str, np.ndarray]:
        """Calibrated readouts for many positions: layer -> (n, d) in, trait -> (n,) out."""
        return {trait: (rows[p.layer] @ p.direction - p.mean) / p.std for trait, p in self.readers.items()}

    def annotate(self, summary: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """A reply's probe summary with each probe's measured reliability added (``chat --json``, API)."""
        table = self.reliability()
        return {t: {**s, "reliability": table[t]} if t in table else s for t, s in summary.items()}

    def notices(self) -> list[str]:
        """What a reply should say about its probes: those read without a jointly fit, measured probe."""
        unmeasured = sorted(t for t, p in self.readers.items() if p.measured() is None)
        if not unmeasured:
            return []
        return [
            f"probes {', '.join(unmeasured)} read their steering direction, uncalibrated for specificity and with no "
            "measured reliability on this model; fit them with: python -m playground calibrate"
        ]

    def reliability(self) -> dict[str, dict[str, Any]]:
        """Per probe: measured AUROCs (held-out when evaluated, else cross-instruction) and whether to trust it."""
        out = {}
        for trait, p in self.readers.items():
            measured = p.measured()
            out[trait] = {
                "auroc": None if not measured else measured.get("auroc"),
                "specificity": None if not measured else measured.get("specificity"),
                "source": "heldout" if "heldout" in p.reliability else ("cv" if "cv" in p.reliability else None),
                "reliable": p.reliable(),
            }
        return out


def summarize(per_token: Mapping[str, Sequence[float]], prompt_last: Mapping[str, float]) -> dict[str, dict[str, Any]]:
    """The ``probes`` object of a result: per-token series, response mean and prompt prediction."""
    out = {}
    for trait, series in per_token.items():
        values = [round(float(x), 4) for x in series]
        out[trait] = {
            "per_token": values,
            "mean": round(float(np.mean(values)), 4) if values else None,
            "prompt_last": round(float(prompt_last[trait]), 4),
        }
    return out


EXTRACT_HINT = "python -m playground prepare --model MODEL --traits {trait}"


def build_steering(
    strengths: Mapping[str, float], vectors: Mapping[str, TraitVector], source: str = "--steer"
) -> Steering:
    """Turn {trait: strength} into residual additions. Strength is unitless: 0 off, 1 strong but coherent."""
    additions: dict[int, np.ndarray] = {}
    for trait, strength in strengths.items():
        if trait not in vectors:
            raise PlaygroundError(
                f"{source}: unknown trait '{trait}'{did_you_mean(trait, list(vectors))} "
                f"(available: {', '.join(sorted(vectors)) or 'none'})"
                + ("" if vectors else f"; this model has no trait vectors yet: {EXTRACT_HINT.format(trait=trait)}")
            )
        if not -STEER_LIMIT <= strength <= STEER_LIMIT:
            raise PlaygroundError(
                f"{source}: strength {strength:g} for '{trait}' is outside -{STEER_LIMIT:g}..{STEER_LIMIT:g} "
                "(0 = off, 1 = strong but coherent, negative suppresses)"
            )
    for trait, strength in active_strengths(strengths).items():
        layer, delta = steering_addition(vectors[trait], strength)
        additions[layer] = additions.get(layer, 0) + delta
    return Steering(additions)
