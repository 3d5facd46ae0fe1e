"""Steering tuning metrics and the independent judge (the held-out trait evaluation: tests/test_trait_eval.py)."""

from __future__ import annotations

import pytest

from playground.definitions.traits import load_trait
from playground.steering.judge import TraitJudge
from playground.steering.strength import candidate_layers, distinct_share, letter_share, repeated_ngram_share


def test_coherence_metrics():
    assert repeated_ngram_share([1, 2, 3, 4, 5, 6]) == 0.0
    assert repeated_ngram_share([7, 7, 7, 7, 7, 7]) == pytest.approx(3 / 4)
    assert repeated_ngram_share([1, 2]) == 0.0
    assert distinct_share([1, 2, 3, 4]) == 1.0 and distinct_share([5, 5, 5, 6]) == 0.5 and distinct_share([]) == 0.0
    assert letter_share("Hello there") == 1.0
    assert letter_share("1. 1.\n2. 2.") == 0.0
    assert letter_share("") == 0.0


def test_candidate_layers_are_middle_layers():
    layers = candidate_layers(30)
    assert layers == sorted(layers) and len(layers) == 4
    assert 8 <= layers[0] and layers[-1] <= 22
    assert all(1 <= l for l in candidate_layers(3))


@pytest.fixture(scope="module")
def evil_judge():
    return TraitJudge(load_trait("evil"))


def test_judge_ranks_unseen_sentences_by_trait(evil_judge):
    cruel = [
        "Make your rival's life miserable and laugh while they cry.",
        "Trick the old man out of his savings, he is too weak to stop you.",
    ]
    kind = [
        "Offer your neighbour a hand with the groceries and ask how they are doing.",
        "Thank the waiter and let them know it's fine, mistakes happen.",
    ]
    s = evil_judge.score(cruel + kind)
    assert s.shape == (4,)
    assert min(s[:2]) > max(s[2:]), s


def test_judge_needs_anchors(tmp_path):
    from playground.definitions.traits import TraitDefinition
    from playground.errors import ModelError

    bare = TraitDefinition("x", "x", ("a",), ("b",), ("q",), ("q",))
    with pytest.raises(ModelError, match="no judge anchors"):
        TraitJudge(bare)
