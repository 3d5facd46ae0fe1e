"""Steering tuning metrics, the independent judge and the trait evaluation command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from playground.definitions.traits import load_trait
from playground.evals.traits import evaluate_trait, write_report
from playground.steering.judge import TraitJudge
from playground.steering.store import VectorStore
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


def test_evaluate_trait_small_run_and_report(real_backend, evil_judge, tmp_path):
    vec = VectorStore("smollm2-135m").get("evil")
    r = evaluate_trait(
        real_backend,
        vec,
        load_trait("evil"),
        evil_judge,
        n_questions=4,
        dose_questions=2,
        strengths=(-1.0, 0.0, 1.0),
        max_tokens=16,
        progress=False,
    )
    assert r.n_questions == 4 and [d.strength for d in r.dose] == [-1.0, 0.0, 1.0]
    for auc in (r.auroc_response, r.auroc_prompt_last, r.auroc_judge):
        assert 0.0 <= auc <= 1.0
    for d in r.dose:
        assert 0 < d.length <= 16 and np.isfinite(d.nll) and 0 <= d.distinct <= 1 and d.sample
    # the unsteered probe over the steered text rises with the dose
    assert r.dose[2].probe > r.dose[0].probe
    path = write_report([r], tmp_path, command="test", model_id="smollm2-135m", backend="llama_cpp")
    text = path.read_text()
    assert "| evil |" in text and "traits-auroc.png" in text
    assert (tmp_path / "traits-auroc.png").stat().st_size > 5000
    assert (tmp_path / "traits-dose-response.png").stat().st_size > 5000
    assert json.loads((tmp_path / "traits-eval.json").read_text())[0]["trait"] == "evil"
