"""The benchmark's UI leg (first streamed token in the browser vs the backend's own) runs end to end on the real
model and reports sane, consistent numbers. No timing goals here: those belong to the benchmark's report."""

from __future__ import annotations

import pytest

from playground.evals.bench import perf_report
from playground.evals.bench import ui_leg as bench_ui

CASES = ("long", "short")


def test_missing_browser_is_a_skip_entry_not_a_crash(monkeypatch):
    monkeypatch.setattr(bench_ui, "CHROMIUM", "/nonexistent/chromium")
    out = bench_ui.measure_ui_first_token()  # gives up before loading any model
    assert set(out) == {"skipped"} and "/nonexistent/chromium" in out["skipped"]
    lines = perf_report._ui_lines({"ui": out})
    assert "not measured" in lines[-1] and "/nonexistent/chromium" in lines[-1]


@pytest.mark.model
@pytest.mark.browser
def test_ui_leg_reports_consistent_first_token_times(real_backend, tmp_path):
    why = bench_ui.ui_unavailable()
    if why is not None:
        pytest.skip(why)
    out = bench_ui.measure_ui_first_token(real_backend, rounds=1, prompt_tokens=200)
    assert out["rounds"] == 1 and out["max_tokens"] == bench_ui.MIN_UI_MAX_TOKENS
    for name in CASES:
        case = out[name]
        assert len(case["runs"]) == 1
        run = case["runs"][0]
        for key in ("ui_ttft_s", "backend_ttft_s", "server_ttft_s"):
            assert 0 < case[key] < 60, (name, key, case[key])
        assert case["ratio"] == pytest.approx(case["ui_ttft_s"] / case["backend_ttft_s"], rel=0.01)
        # the page can only show a token the server has made: the browser's time holds the server's
        assert case["ui_ttft_s"] > case["server_ttft_s"]
        # key press -> server starts, server's own time, first token -> page: the parts add up to the whole
        parts = run["request_s"] + run["server_s"] + run["delivery_s"]
        assert parts == pytest.approx(run["ui_s"], abs=0.005)
        # greedy, same prompt: the page got the very reply the backend writes on its own
        assert case["same_reply"] and run["prompt_tokens"] == run["backend_prompt_tokens"] > 0
        assert run["first_text"] and run["reply"].startswith(run["first_text"].split()[0])
    assert out["long"]["prompt_tokens"] >= 200 > out["short"]["prompt_tokens"]
    assert out["long"]["cache"].startswith("cold") and out["short"]["cache"].startswith("warm")

    # the report states the goal and the numbers
    lines = "\n".join(perf_report._ui_lines({"ui": out}))
    assert "goal ≤ 1.5×" in lines and f"**{out['long']['ratio']}**" in lines and f"**{out['short']['ratio']}**" in lines
