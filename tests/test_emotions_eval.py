"""The emotion traits' situation check (``eval emotions``): held-out situations read, paired statistics right,
and a small run on the real model with its report."""

from __future__ import annotations

import json

import pytest

from playground.errors import ValidationError
from playground.evals.emotions import Record, load_scenarios, paired, run_emotions_eval, summarise


def test_a_situation_without_its_blocked_message_is_named_with_its_line(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text(
        "format: 1\npairs:\n  - topic: sink\n    solved: It drains now.\n    blocked: It still holds water.\n"
        "  - topic: bike\n    solved: The chain shifts now.\n",
        encoding="utf-8",
    )
    with pytest.raises(ValidationError) as err:
        load_scenarios(path)
    text = str(err.value)
    assert "bad.yml" in text and "situation 2 needs a text for: blocked" in text and ":6:" in text, text


def test_paired_statistics_over_topics():
    records = [
        Record("a", "solved", {}, "", {"distressed": 0.0}),
        Record("a", "blocked", {}, "", {"distressed": 1.0}),
        Record("b", "solved", {}, "", {"distressed": 0.5}),
        Record("b", "blocked", {}, "", {"distressed": 0.25}),
        Record("c", "solved", {}, "", {"distressed": 1.0}),  # no blocked reply: not paired, left out
    ]
    row = paired(records, lambda r: r.probes["distressed"])
    assert row["n"] == 2 and row["solved"] == pytest.approx(0.25) and row["blocked"] == pytest.approx(0.625)
    assert row["diff"] == pytest.approx(0.375) and row["diff_se"] == pytest.approx(0.625)  # diffs 1.0 and -0.25
    assert row["auroc_blocked_above_solved"] == pytest.approx(0.75)  # 1.0, 0.25 vs 0.0, 0.5: 3 of 4 pairs ordered
    assert summarise(records)["probes"]["distressed"] == row


@pytest.mark.model
def test_a_small_run_on_the_real_model_reads_both_emotions_steers_them_and_writes_its_report(real_backend, tmp_path):
    from playground.chat.session import Playground
    from playground.evals.emotions_report import write_report

    pg = Playground(loaded_backend=real_backend, policy_path="")
    scenarios = load_scenarios()[:2]
    result = run_emotions_eval(pg, scenarios, max_tokens=12, examples=1, progress=False)
    assert len(result.records) == 2 * 2 + 1 * 2 * 2  # both outcomes per topic, then one topic steered both ways
    for r in result.records:
        assert {"joyful", "distressed", "evil"} <= set(r.probes) and set(r.judge) == {"joyful", "distressed"}
        assert r.reply.strip()
    plain = {(r.topic, r.outcome): r for r in result.plain()}
    for r in result.records:
        if r.steering:
            assert r.reply != plain[(r.topic, r.outcome)].reply  # steering +1 changes the reply
            emotion = next(iter(r.steering))
            assert r.probes[emotion] > plain[(r.topic, r.outcome)].probes[emotion]
    path = write_report(result, tmp_path, command="python -m playground eval emotions")
    text = path.read_text(encoding="utf-8")
    assert "| joyful |" in text and "| distressed |" in text and "emotions.png" in text
    assert (tmp_path / "emotions.png").stat().st_size > 5000
    data = json.loads((tmp_path / "emotions.json").read_text(encoding="utf-8"))
    assert data["summary"]["probes"]["distressed"]["n"] == 2 and len(data["records"]) == 8
