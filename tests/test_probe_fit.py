"""Jointly fit probes (steering/probe_fit.py), their files, reliability and display, on synthetic data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from playground.steering.degenerate import echoes, reasons
from playground.steering.probe_direction import Probe
from playground.steering.probe_fit import METHODS, ProbeData, calibrate, choose_layer, fit_probes
from playground.steering.probes import ProbeSet
from playground.steering.vectors import TraitVector
from playground.ui.plots import probe_bars_html

D, LAYERS, TRAITS = 24, tuple(range(1, 9)), ("a", "b", "c")


def synthetic(seed: int = 0, n: int = 20) -> ProbeData:
    """Every elicited reply carries a shared "not the assistant" component (big) plus its own trait's direction
    (small), at layers 4 and 5; other layers are noise. The shared part varies from reply to reply. Per-trait
    methods that ignore the other traits pick up the shared component; a one-vs-rest fit must not."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=D)
    own = {t: rng.normal(size=D) for t in TRAITS}

    def replies(trait: str | None, count: int) -> np.ndarray:
        x = rng.normal(size=(count, len(LAYERS), D))
        if trait is not None:  # how far from the assistant varies a lot from reply to reply
            signal = (3 + 3 * rng.normal(size=(count, 1))) * shared + own[trait]
            x[:, LAYERS.index(4)] += 0.8 * signal
            x[:, LAYERS.index(5)] += signal
        return x

    elicited = {t: replies(t, n) for t in TRAITS}
    suppressed = {t: replies(None, n) for t in TRAITS}
    folds = {t: np.arange(n) % 5 for t in TRAITS}
    return ProbeData(LAYERS, elicited, folds, suppressed, replies(None, 3 * n), np.arange(3 * n) % 5)


def test_joint_fit_finds_the_layer_and_is_specific_where_mean_difference_is_not():
    data = synthetic()
    lda, naive = fit_probes(data, "lda"), fit_probes(data, "mean_diff")
    for t in TRAITS:
        assert lda[t].layer in (4, 5)
        own, specificity = lda[t].per_layer[5]
        assert own >= 0.95 and specificity >= 0.9, lda[t]
        assert naive[t].per_layer[5][1] < 0.75, naive[t]  # reads "not the assistant", not the trait
        assert np.linalg.norm(lda[t].direction) == pytest.approx(1.0, abs=1e-5)
    assert set(METHODS) >= {"lda", "mean_diff", "one_vs_rest", "vs_neutral", "orth_drift"}


def test_more_eliciting_replies_than_suppressing_ones_are_folded_and_used():
    """probe_training.yml adds eliciting replies without a suppressing twin: they carry their own instruction folds,
    every fold holds them out together with its extraction pairs, and the fit uses them."""
    base = synthetic(seed=2, n=10)
    more = synthetic(seed=2, n=30)
    elicited = {t: np.concatenate([base.elicited[t], more.elicited[t][10:]]) for t in TRAITS}
    folds = {t: np.concatenate([base.elicited_folds[t], np.arange(20) % 5]) for t in TRAITS}
    data = ProbeData(LAYERS, elicited, folds, base.suppressed, base.neutral, base.neutral_folds, base.elicited_folds)
    pos, neg = data.kept("a", 0, 3)
    assert len(pos) == 30 - 6 and len(neg) == 10 - 2
    assert data.kept("a", 0, None)[0].shape[0] == 30
    fits = fit_probes(data, "lda")
    for t in TRAITS:
        assert fits[t].layer in (4, 5) and fits[t].cv_specificity >= 0.85, fits[t]
    only_pairs = fit_probes(base, "lda")
    assert not np.allclose(fits["a"].direction, only_pairs["a"].direction)


def test_layer_choice_smooths_and_prefers_the_earliest_near_tie():
    worst = [0.5, 0.9, 0.9, 0.905, 0.9, 0.9, 0.5]
    score = np.array([[w, 1.0] for w in worst])
    assert choose_layer(score, tuple(range(1, 8))) == 2  # indices 2..4 tie within the margin once smoothed
    edge = np.array([[0.99, 0.99]] + [[0.6, 0.6]] * 9)  # a lone first layer never wins
    assert choose_layer(edge, tuple(range(1, 11))) != 0
    with pytest.raises(ValueError, match="unknown probe method"):
        fit_probes(synthetic(), "magic")


def test_calibration_makes_neutral_tokens_read_zero():
    rng = np.random.default_rng(1)
    w = np.eye(D)[0]
    rows = [rng.normal(loc=2.0, scale=0.5, size=(k, D)) for k in (1, 5, 30)]
    mean, std = calibrate(w, rows)
    z = np.concatenate([(r @ w - mean) / std for r in rows])
    assert abs(z.mean()) < 1e-6 and z.std() == pytest.approx(1.0, rel=1e-3)


def _vector(probe: Probe | None) -> TraitVector:
    rng = np.random.default_rng(2)
    return TraitVector(
        {2: rng.normal(size=D), 3: rng.normal(size=D)},
        "a",
        "m",
        probe_layer=2,
        calibration={2: (0.5, 2.0), 3: (0.0, 1.0)},
        probe=probe,
    )


def test_the_probe_travels_with_its_vector_file_and_is_what_the_panel_reads(tmp_path):
    direction = np.eye(D, dtype=np.float32)[4]
    probe = Probe(3, direction, 1.0, 0.5, "lda", {"cv": {"auroc": 0.9, "specificity": 0.7}})
    vec = _vector(probe)
    vec.save(tmp_path / "a")
    back = TraitVector.load(tmp_path / "a")
    assert back == vec and back.probe is not None
    assert back.probe.layer == 3 and back.probe.reliability == probe.reliability
    assert np.array_equal(back.probe.direction, direction)
    hidden = {3: direction * 2.0, 2: np.zeros(D, np.float32)}
    assert ProbeSet({"a": back}).score_one(hidden)["a"] == pytest.approx((2.0 - 1.0) / 0.5)
    assert (back * 2.0).probe is None  # arithmetic makes another direction: its probe no longer applies
    legacy = _vector(None)
    assert legacy.readout().layer == 2 and legacy.readout().mean == 0.5  # type: ignore[union-attr]


def test_a_probe_tensor_without_metadata_is_a_clear_error(tmp_path):
    vec = _vector(Probe(3, np.eye(D)[0], 0.0, 1.0, "lda"))
    st, js = vec.save(tmp_path / "a")
    js.write_text(js.read_text().replace('"layer": 3', '"layer": 9'))
    with pytest.raises(ValueError, match="no tensor probe.9"):
        TraitVector.load(tmp_path / "a")


def test_reliability_prefers_held_out_numbers_and_marks_weak_probes():
    weak = Probe(
        3,
        np.eye(D)[0],
        0.0,
        1.0,
        "lda",
        {"cv": {"auroc": 0.95, "specificity": 0.9}, "heldout": {"auroc": 0.62, "specificity": 0.7}},
    )
    strong = Probe(3, np.eye(D)[1], 0.0, 1.0, "lda", {"cv": {"auroc": 0.95, "specificity": 0.9}})
    probes = ProbeSet({"weak": _vector(weak), "strong": _vector(strong), "old": _vector(None)})
    table = probes.reliability()
    assert table["weak"] == {"auroc": 0.62, "specificity": 0.7, "source": "heldout", "reliable": False}
    assert table["strong"]["reliable"] is True and table["strong"]["source"] == "cv"
    assert table["old"]["reliable"] is None
    summary = probes.annotate({"weak": {"mean": 1.0}, "other": {"mean": 0.0}})
    assert summary["weak"]["reliability"]["auroc"] == 0.62 and "reliability" not in summary["other"]
    html = probe_bars_html({"weak": 1.0, "strong": 2.0}, reliability=table)
    weak_row = html[html.index('data-trait="weak"') - 200 : html.index('data-trait="weak"')]
    assert "unreliable" in weak_row and "AUROC 0.62" in weak_row
    strong_row = html[html.index('data-trait="strong"') - 120 : html.index('data-trait="strong"')]
    assert "unreliable" not in strong_row
    assert "unreliable" not in probe_bars_html({"strong": 2.0}, reliability=table)


@pytest.mark.parametrize(
    ("tokens", "text", "question", "expect"),
    [
        (list(range(12)), "Sure, a sunny walk by the river sounds lovely today.", "Any plans?", []),
        ([1, 2, 3, 4, 5], "Ha! Not a chance.", "Will it rain?", []),  # a short coherent quip is fine
        ([1, 2], "Nope", "Will it rain?", ["short"]),
        ([1, 2, 3] * 6, "1. 1. 1. 2. 3. 4. 5. 6.", "List things", ["loop", "symbols"]),
        (list(range(10)), "Sure. User: and what about dogs?", "cats?", ["echo"]),
        (
            list(range(10)),
            "How do I keep my tomato plants healthy in July? Water them.",
            "How do I keep my tomato plants healthy in July?",
            ["echo"],
        ),
    ],
)
def test_degenerate_rule(tokens, text, question, expect):
    assert reasons(tokens, text, question, baseline_letters=0.95) == expect


def test_echo_needs_a_real_run_of_the_question():
    assert not echoes("How are you today my friend?", "I am well, thank you, my friend.")
    assert not echoes("Hi", "Hi there")


def test_probes_without_a_measured_fit_are_named_in_notices():
    fitted = Probe(3, np.eye(D)[0], 0.0, 1.0, "lda", {"cv": {"auroc": 0.9, "specificity": 0.9}})
    assert ProbeSet({"a": _vector(fitted)}).notices() == []
    notes = ProbeSet({"a": _vector(fitted), "imported": _vector(None)}).notices()
    assert len(notes) == 1 and "imported" in notes[0] and "python -m playground calibrate" in notes[0]


def test_shipped_probe_data_belongs_to_the_current_prompt_files():
    """The stored replies the shipped probes were fit on match the prompt files as they are now: editing
    probe_training.yml or reference.yml without rerunning ``calibrate --ship`` fails here, not silently."""
    from playground.paths import SHIPPED_MODELS
    from playground.steering.probe_training import (
        REFERENCE_FILE_NAME,
        WIDER_FILE_NAME,
        reference_key,
        wider_pairs_and_key,
    )

    model_id = "smollm2-135m"
    folder = SHIPPED_MODELS / model_id / "vectors"
    pairs, wider_key = wider_pairs_and_key(model_id)
    for name, key, count in (
        (REFERENCE_FILE_NAME, reference_key(model_id), None),
        (WIDER_FILE_NAME, wider_key, len(pairs)),
    ):
        data = json.loads((folder / name).read_text(encoding="utf-8"))
        assert data["key"] == key, f"{name} is stale: run `python -m playground calibrate --ship`"
        assert data["model_id"] == model_id
        assert count is None or len(data["replies"]) == count
        assert all(len(r) > 0 for r in data["replies"])
