"""`eval decoding`: chat's generation path against the reference path."""

from __future__ import annotations

import json

import pytest

from playground.evals.decoding import PathPair, compare_paths, distinct_share, repeated_share, summarize, write_report


def test_repetition_and_distinct_shares():
    assert repeated_share([1, 2, 3, 1, 2, 3, 1, 2, 3]) == pytest.approx(1 - 3 / 7)
    assert repeated_share([1, 2, 3, 4]) == 0.0
    assert repeated_share([1, 2]) == 0.0
    assert distinct_share([5, 5, 6, 7]) == 0.75 and distinct_share([]) == 0.0


def _pair(steering="", fork=10, chat=10, ref=10, rep_chat=0.0, rep_ref=0.0):
    return PathPair("q", steering, 1.0 if steering else 0.0, fork, chat, ref, 0.01, rep_chat, rep_ref, 0.8, 0.8)


def test_summary_counts_identical_and_degenerate_replies_per_condition(tmp_path):
    pairs = [
        _pair(),  # identical
        _pair(fork=3, chat=12),
        _pair("humorous", fork=2, rep_chat=0.5),  # degenerate on the chat path only
        _pair("humorous", fork=5, rep_ref=0.3),
    ]
    rows = {r["steering"]: r for r in summarize(pairs)}
    assert rows["none"]["identical"] == 1 and rows["none"]["n"] == 2
    assert rows["humorous +1"]["identical"] == 0
    assert (rows["humorous +1"]["degenerate_chat"], rows["humorous +1"]["degenerate_reference"]) == (1, 1)
    path = write_report(pairs, tmp_path, command="python -m playground eval decoding", seconds=1.0, layer=20)
    text = path.read_text(encoding="utf-8")
    assert "| humorous +1 | 0/2 |" in text and (tmp_path / "decoding.png").stat().st_size > 0
    assert len(json.loads((tmp_path / "decoding.json").read_text())["pairs"]) == 4


@pytest.mark.model
def test_both_paths_start_with_the_same_token_and_stay_close(playground):
    pairs = compare_paths(
        playground,
        ["Why is the sky blue?", "What is a good breakfast?"],
        steered=["humorous"],
        max_tokens=12,
        progress=False,
    )
    assert len(pairs) == 4
    for p in pairs:
        assert p.fork >= 1  # the first token comes from the prompt context on both paths
        assert p.activation_gap < 0.05
