"""The steering-strength formula: a strength on the playground's scale -> a residual-stream addition.

Strength is unitless (0 off, 1 the strongest dose that still reads coherently, negative suppresses; see
``strength.py``). A vector stores, per layer, how many raw residual units "strength 1" means there
(``steer_scale``, measured at extraction); a layer without a measured scale falls back to the raw
vector's norm. Every place that steers (chat steering, guard counter-steering, training hooks) goes
through these two functions, so a strength means the same push everywhere.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from .vectors import TraitVector


def steering_scale(vec: TraitVector, layer: int) -> float:
    """Raw residual units that strength 1 of ``vec`` adds at ``layer`` (along ``vec.unit(layer)``)."""
    return vec.steer_scale.get(layer, vec.norm(layer))


def steering_addition(vec: TraitVector, strength: float, layer: int | None = None) -> tuple[int, np.ndarray]:
    """(layer, float32 vector) that steering ``strength`` of ``vec`` adds; ``layer`` defaults to its steer layer."""
    layer = vec.steer_layer if layer is None else layer
    if layer is None:
        raise ModelError(f"vector '{vec.trait}' has no steering layer")
    scale = steering_scale(vec, layer)
    return layer, (float(strength) * scale * vec.unit(layer)).astype(np.float32)
