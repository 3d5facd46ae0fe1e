"""Extraction on the default model: bit-exact within one machine, within stated tolerances across machines."""

from __future__ import annotations

import numpy as np
import pytest

from playground.definitions.traits import load_trait
from playground.steering.agreement import MIN_COSINE, MIN_READOUT_R, compare
from playground.steering.extraction import AUROC_MARGIN, choose_probe_layer, extract_trait
from playground.steering.strength import EXPRESSION_MARGIN, DoseResult, choose_dose


@pytest.fixture(scope="module")
def humorous_twice(playground):
    """Two re-extractions of one trait in this process from its stored replies (about 15 s each)."""
    trait = load_trait("humorous")
    replies = playground.vectors.replies("humorous")
    assert replies is not None, "the shipped humorous vector has no stored extraction replies"
    return [extract_trait(playground.backend, trait, progress=False, replies=replies) for _ in range(2)]


@pytest.mark.model
def test_re_extracting_twice_on_one_machine_is_bit_identical(humorous_twice):
    a, b = humorous_twice
    assert a.extra["replies"]["reused"] and b.extra["replies"]["reused"]
    assert (a.probe_layer, a.steer_layer) == (b.probe_layer, b.steer_layer)
    assert sorted(a.directions) == sorted(b.directions)
    for layer, direction in a.directions.items():
        assert np.array_equal(b.directions[layer], direction), layer
    assert a.calibration == b.calibration
    assert a.steer_scale == b.steer_scale


@pytest.mark.model
def test_a_re_extraction_agrees_with_the_shipped_vector_within_tolerance(playground, humorous_twice):
    """What must hold on any CPU and llama.cpp build (the shipped vector was made on another machine): the same
    probe and steering layers, direction cosine >= 0.99, calibrated readouts over a fixed text r >= 0.98."""
    shipped = playground.vectors.get("humorous")
    agreement = compare(playground.backend, humorous_twice[0], shipped)
    assert agreement.same_layers, agreement
    assert agreement.cosine >= MIN_COSINE, agreement
    assert agreement.readout_r >= MIN_READOUT_R, agreement


def _held(effects: dict[int, float], aurocs: dict[int, float] | None = None) -> dict[int, dict[str, float]]:
    return {l: {"auroc": (aurocs or {}).get(l, 0.9), "effect": e} for l, e in effects.items()}


def test_probe_layer_near_ties_go_to_the_earliest_layer():
    flat = _held({l: 2.0 + 0.01 * (l % 3) for l in range(1, 29)})
    assert choose_probe_layer(flat, 30) == 6  # the first considered layer (20% of depth)
    peaked = _held({l: 3.0 if l == 20 else 1.0 for l in range(1, 29)})
    assert choose_probe_layer(peaked, 30) == 19  # the smoothed peak's first layer within the margin


def test_probe_layer_choice_is_stable_under_small_perturbations():
    rng = np.random.default_rng(0)
    base = {l: 1.0 + 1.2 * np.exp(-((l - 19) ** 2) / 20) for l in range(1, 29)}
    chosen = {
        choose_probe_layer(_held({l: e * (1 + rng.normal(0, 0.01)) for l, e in base.items()}), 30) for _ in range(50)
    }
    assert len(chosen) == 1, chosen


def test_layers_with_clearly_worse_auroc_are_not_chosen():
    effects = {l: 1.0 for l in range(1, 29)}
    effects[10] = 5.0
    aurocs = {l: 0.95 for l in range(1, 29)}
    aurocs[9] = aurocs[10] = aurocs[11] = 0.95 - 2 * AUROC_MARGIN
    assert choose_probe_layer(_held(effects, aurocs), 30) not in (9, 10, 11)


def _dose(layer: int, expression: float) -> DoseResult:
    return DoseResult(layer, 0.25, 2.0, 0.0, 0.9, 0.9, expression, True, "")


def test_steering_near_ties_go_to_the_earliest_layer():
    tops = [_dose(21, 1.0), _dose(9, 0.2), _dose(13, 1.0 - EXPRESSION_MARGIN / 2), _dose(17, 0.9)]
    assert choose_dose(tops).layer == 13
    assert choose_dose([_dose(9, 0.2), _dose(21, 1.0)]).layer == 21
    assert choose_dose([]) is None


def test_stored_replies_round_trip_and_are_used_only_for_the_text_they_were_made_for(tmp_path):
    from dataclasses import replace

    from playground.steering.extraction import NEUTRAL_SYSTEM
    from playground.steering.extraction_replies import QuestionReplies, ReplySet, replies_key

    trait = load_trait("humorous")
    key = replies_key("m", trait, NEUTRAL_SYSTEM, 40)
    data = ReplySet(key, "m", "humorous", (QuestionReplies([1, 2], [3], []),))
    path = data.save(tmp_path / "humorous.replies.json")
    assert ReplySet.load(path) == data
    assert replies_key("m", trait, NEUTRAL_SYSTEM, 41) != key
    assert replies_key("other", trait, NEUTRAL_SYSTEM, 40) != key
    edited = replace(trait, extraction_questions=(*trait.extraction_questions[:-1], "Something else?"))
    assert replies_key("m", edited, NEUTRAL_SYSTEM, 40) != key


def test_a_damaged_replies_file_is_a_clear_error(tmp_path):
    from playground.errors import PlaygroundError
    from playground.steering.extraction_replies import ReplySet

    path = tmp_path / "x.replies.json"
    path.write_text('{"key": 1', encoding="utf-8")
    with pytest.raises(PlaygroundError, match="x.replies.json"):
        ReplySet.load(path)
