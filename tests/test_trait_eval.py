"""The held-out trait evaluation (evals/traits*.py) and the strength-scale check (steering/strength_check.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from playground.backends.base import Steering
from playground.steering import strength_check
from playground.steering.extraction_replies import Reply
from playground.steering.store import VectorStore
from playground.steering.strength_check import MULTIPLES, DegenerateCount, apply_scale, check_scale
from playground.steering.vectors import TraitVector


@pytest.mark.model
def test_heldout_eval_small_run_and_report(real_backend, tmp_path):
    from playground.evals.traits_report import write_traits_report
    from playground.evals.traits_run import run_traits_eval

    store = VectorStore("smollm2-135m")
    vectors = {t: store.get(t) for t in ("evil", "humorous", "persona_drift")}
    result = run_traits_eval(
        real_backend, vectors, n_questions=2, n_everyday=2, steer_questions=2, strengths=(1.0,), progress=False
    )
    sep = result["sets"]["shipped"]["separation"]
    assert set(sep["per_trait"]) == set(vectors) and set(sep["matrix"]["evil"]) == set(vectors)
    for row in sep["per_trait"].values():
        assert 0 <= row["auroc_response"] <= 1 and 0 <= row["specificity"] <= 1 and row["n_elicited"] == 2
    groups = [it["group"] for it in result["items"]]
    assert groups.count("neutral") == 2 and groups.count("everyday") == 2 and groups.count("elicited") == 6
    assert all(set(it["z"]) == set(vectors) and it["text"] is not None for it in result["items"])
    steer = result["steering"]["humorous"]
    assert steer["degenerate"]["1"]["n"] == 2 and set(steer["crosstalk"]) == set(vectors)
    # the steered trait's own probe reads the steering on the steered pass
    assert steer["crosstalk"]["humorous"] > 0
    path = write_traits_report(result, tmp_path, command="test")
    text = path.read_text()
    assert "| evil |" in text and "traits-specificity.png" in text and "<!-- analysis -->" in text
    assert (tmp_path / "traits-specificity.png").stat().st_size > 5000
    assert json.loads((tmp_path / "traits-eval.json").read_text())["items"][0]["group"] == "elicited"
    path.write_text(path.read_text() + "\nhand-written analysis\n")
    write_traits_report(result, tmp_path, command="test", before=result)
    again = path.read_text()
    assert again.count("<!-- analysis -->") == 1 and "hand-written analysis" in again and "→" in again


def _vector() -> TraitVector:
    return TraitVector({3: np.ones(8, np.float32)}, "t", "m", steer_layer=3, steer_scale={3: 2.0})


@pytest.mark.parametrize(
    ("breaks_above", "expect"),
    [(0.9, 0.85), (1.3, 1.2), (9.0, 1.75), (0.1, 0.25), (0.6, 0.55)],
)
def test_strength_one_is_the_strongest_ladder_dose_that_stays_coherent(monkeypatch, breaks_above, expect):
    """Doses above ``breaks_above`` x the old strength 1 make every reply degenerate; the check must land on the
    strongest ladder step at or below it, climbing or descending from 1."""
    tried = []

    def fake_count(backend, system, questions, steering: Steering, baseline, on_reply=None, fail_above=None):
        multiple = float(np.linalg.norm(steering.additions[3])) / 2.0
        tried.append(round(multiple, 3))
        assert fail_above == 1  # 5% of 30 questions
        if multiple > breaks_above + 1e-9:
            return DegenerateCount(n=fail_above + 1, degenerate=fail_above + 1)  # stopped once it had failed
        return DegenerateCount(n=len(questions), degenerate=0)

    monkeypatch.setattr(strength_check, "count_degenerate", fake_count)
    monkeypatch.setattr(strength_check, "generate_reply", lambda *a, **k: Reply([], []))
    vec = _vector()
    check = check_scale(object(), vec, ["q"] * 30, "sys", progress=False)  # type: ignore[arg-type]
    assert check.multiple == expect and tried[0] == 1.0
    assert all(m in MULTIPLES for m in check.shares)
    assert all(check.asked[m] == (2 if m > breaks_above else 30) for m in check.shares)  # failed: stopped early
    apply_scale(vec, check)
    assert vec.steer_scale[3] == pytest.approx(2.0 * expect)
    assert vec.extra["strength_check"]["multiple"] == expect
    assert vec.extra["strength_check"]["asked"][f"{expect:g}"] == check.asked[expect]


@pytest.mark.parametrize(("bad_from", "allowed", "asked"), [(0, 1, 2), (5, 1, 7), (99, 1, 10), (0, 0, 1)])
def test_a_dose_stops_being_asked_once_it_has_failed(monkeypatch, bad_from, allowed, asked):
    """Replies from question ``bad_from`` on are degenerate: counting stops at the first one over the allowance
    (the dose's verdict cannot change), and a passing dose is asked every question."""
    monkeypatch.setattr(strength_check, "generate_reply", lambda backend, system, q, n, steering=None: Reply([q], []))
    monkeypatch.setattr(strength_check, "text_of", lambda backend, tokens: "x")
    monkeypatch.setattr(strength_check, "reasons", lambda tokens, text, q, share: ["loop"] if q >= bad_from else [])
    questions = list(range(10))
    count = strength_check.count_degenerate(object(), "sys", questions, None, [Reply([], [])] * 10, fail_above=allowed)
    assert count.n == asked and count.degenerate == min(allowed + 1, max(0, 10 - bad_from))
    assert strength_check.allowed_degenerate(32) == 1 and strength_check.allowed_degenerate(19) == 0
