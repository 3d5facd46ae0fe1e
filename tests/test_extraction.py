"""Extracting a trait on the default model reproduces the shipped vector exactly."""

from __future__ import annotations

import numpy as np
import pytest

from playground.extraction import extract_trait
from playground.traits import load_trait

pytestmark = pytest.mark.model


def test_re_extracting_humorous_reproduces_the_shipped_vector(playground):
    """Directions, calibration, probe/steer layers and the strength scale, bit for bit (about 25 s).

    Fails when anything changes the numbers extraction sees: llama.cpp numerics, prompt caching, the
    generation path (chat may use a faster one; extraction asks for the reference one)."""
    shipped = playground.vectors.all()["humorous"]
    fresh = extract_trait(playground.backend, load_trait("humorous"), progress=False)
    assert (fresh.probe_layer, fresh.steer_layer) == (shipped.probe_layer, shipped.steer_layer)
    assert sorted(fresh.directions) == sorted(shipped.directions)
    for layer, direction in shipped.directions.items():
        assert np.array_equal(fresh.directions[layer], direction), layer
    assert fresh.calibration == shipped.calibration
    assert fresh.steer_scale == shipped.steer_scale
