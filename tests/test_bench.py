"""The benchmark command runs and reports every field its contract names (no timing assertions here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import REPO

KEYS = {"plain_tok_s", "playground_tok_s", "hf_tok_s", "ratio_vs_plain", "speedup_vs_hf", "ttft_ratio"}
RATIOS = {"ratio_vs_plain", "speedup_vs_hf", "ttft_ratio"}


def test_bench_json_contract(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "playground",
            "bench",
            "--json",
            "--rounds",
            "1",
            "--new-tokens",
            "4",
            "--turns",
            "2",
            "--prompt-tokens",
            "120",
            "--no-extract",
            "--no-cold-start",
            "--no-ui",
            "--report",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        # one thread per model: the contract, not the speed, is tested here, and a 2-thread team's barriers crawl
        # when other work shares the two cores (each worker process has a team of its own)
        env={**os.environ, "PLAYGROUND_THREADS": "1"},
        timeout=600,
    )
    # 3: the baseline check failed (a slowed machine); the ratios are then null and the reason says why
    assert proc.returncode in (0, 3), proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert KEYS <= set(out)
    base = out["baseline"]
    assert base["ok"] == (proc.returncode == 0) and base["fresh_plain_tok_s"] > 0 and base["bench_plain_tok_s"] > 0
    assert all(out[k] > 0 for k in KEYS if k not in RATIOS)
    assert all((out[k] > 0) if base["ok"] else (out[k] is None) for k in RATIOS)
    assert out["quiet"]["checked"] == 2 + 4  # the fresh baseline's runs and one round of four contenders
    assert out["settle"] and all(step["terminated"] == [] for step in out["settle"])  # no leg left anything running
    assert out["prompt_tokens"] >= 120 and "persona_drift" in out["probes"]
    assert [c["turn"] for c in out["conversation"]["reuse"]] == [1, 2]
    assert out["conversation"]["reuse"][1]["prompt_tokens"] > out["conversation"]["reuse"][0]["prompt_tokens"]
    short = out["short_message_ttft"]  # turn 2 of the same conversation on transformers, side by side
    assert short["turns"] == "2-2" and short["playground_s"] > 0 and short["hf_s"] > 0
    assert [c["turn"] for c in out["conversation_hf"]] == [1, 2]
    assert "short message in a running chat" in (tmp_path / "PERFORMANCE.md").read_text()
    assert (tmp_path / "PERFORMANCE.md").read_text().count("|") > 10 and (tmp_path / "perf.png").stat().st_size > 5000


def test_a_regenerated_report_keeps_the_hand_written_notes(tmp_path):
    from playground.evals.bench.perf_report import NOTES_HEADING, write_report

    result = json.loads((REPO / "docs" / "perf.json").read_text())
    (tmp_path / "PERFORMANCE.md").write_text(f"# old numbers\n\n{NOTES_HEADING}\n\n- a note to keep\n")
    text = write_report(result, tmp_path, "python -m playground bench --report docs").read_text()
    assert "old numbers" not in text and text.count(NOTES_HEADING) == 1 and text.endswith("- a note to keep\n")
    assert text.index("| (a) plain") < text.index(NOTES_HEADING)


def test_the_baseline_rule_nulls_the_ratios_of_a_slowed_bench():
    from playground.evals.bench.isolation import BASELINE_FACTOR, apply_baseline, baseline_verdict

    result = {
        "plain_tok_s": 40.0,
        "playground_tok_s": 102.0,
        "ratio_vs_plain": 2.55,
        "speedup_vs_hf": 4.0,
        "ttft_ratio": 1.0,
    }
    slowed = apply_baseline(result, baseline_verdict(110.0, 40.0))  # issue 14: 40 in the bench, ~110 alone
    assert slowed["baseline"]["ok"] is False and "fresh process" in slowed["baseline"]["reason"]
    assert all(slowed[k] is None for k in RATIOS) and slowed["plain_tok_s"] == 40.0
    assert slowed["baseline"]["fresh_plain_tok_s"] == 110.0 and slowed["baseline"]["bench_plain_tok_s"] == 40.0
    fine = apply_baseline(result, baseline_verdict(97.0, 93.0))
    assert fine["baseline"]["ok"] is True and "reason" not in fine["baseline"] and fine["ratio_vs_plain"] == 2.55
    edge = 100.0 * BASELINE_FACTOR
    assert baseline_verdict(100.0, edge)["ok"] and not baseline_verdict(100.0, edge - 0.01)["ok"]
    assert not baseline_verdict(float("nan"), 90.0)["ok"] and not baseline_verdict(100.0, 0.0)["ok"]


@pytest.mark.model
def test_a_plain_worker_runs_in_its_own_process_and_is_reaped():
    from playground.backends.model_source import resolve_model
    from playground.evals.bench.isolation import QuietLog, Worker, WorkerError, descendants

    spec = {"kind": "plain", "threads": 1, "model_path": str(resolve_model(None).path), "prompt": list(range(200, 240))}
    worker = Worker("plain", spec)
    try:
        assert worker.ready()["pid"] == worker.pid != os.getpid()
        quiet = QuietLog()
        quiet.check("plain", [worker.pid])
        run = worker.run(3)
        assert run["tokens"] == 3 and run["total"] >= run["ttft"] > 0
        assert quiet.as_dict()["checked"] == 1 and set(quiet.by_contender) == {"plain"}
    finally:
        worker.close()
    assert worker.proc.returncode == 0 and worker.pid not in descendants()
    broken = Worker("broken", {"kind": "no such contender"})
    try:
        with pytest.raises(WorkerError, match="unknown contender kind"):  # the worker's traceback comes back
            broken.ready()
    finally:
        broken.close()
    assert broken.proc.returncode == 1


def test_the_report_says_why_a_slowed_bench_shows_no_ratios(tmp_path):
    from playground.evals.bench.isolation import apply_baseline, baseline_verdict
    from playground.evals.bench.perf_report import write_report

    result = json.loads((REPO / "docs" / "perf.json").read_text())
    result = apply_baseline(result, baseline_verdict(110.0, result["plain_tok_s"] / 3))
    result["quiet"] = {"checked": 22, "waited": 1, "busy": 0, "busy_if": "anything"}
    text = write_report(result, tmp_path, "python -m playground bench").read_text()
    assert "Baseline check" in text and "failed, ratios not reported" in text and "fresh process" in text
    assert text.count("**not reported**") == 3 and "of 22 measured runs, 1 waited" in text


def test_the_ui_leg_sees_whether_its_server_has_stopped():
    import socket

    from playground.evals.bench.ui_leg import _wait_closed

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert _wait_closed(port, timeout=0.3) is False
    assert _wait_closed(port, timeout=5.0) is True


def test_the_load_report_tabulates_every_engine_and_keeps_hand_written_notes(tmp_path):
    from playground.evals.bench.load_report import write_report

    row = {"tok_s": 40.0, "ttft_p50_s": 0.2, "ttft_p95_s": 0.3, "errors": 0}
    result = {
        "load": {"llama_cpp": {"1": row, "4": {**row, "tok_s": 41.0}, "memory": {"rss_gib": 0.3, "peak_rss_gib": 0.3}},
                 "vllm": {"1": {**row, "tok_s": 43.0}, "4": {**row, "tok_s": 90.5}, "memory": {"rss_gib": 2.9}}},
        "tok_s_ratios": {"vllm_vs_llama_cpp": {"1": 1.08, "4": 2.21}},
        "setup": {"model": "default", "max_tokens": 8, "temperature": 0.7, "mix": [["pirate", {"humorous": 1}, "m"]],
                  "legs_started_on_a_busy_machine": 0},
    }  # fmt: skip
    path = write_report(result, tmp_path)
    text = path.read_text()
    assert "| 4 | vllm | 90.5 | 0.2 | 0.3 | 0 |" in text and "4 chats **2.21x**" in text
    assert (tmp_path / "load.png").stat().st_size > 5000 and (tmp_path / "load.json").exists()
    path.write_text(text.replace("<!-- notes -->\n", "<!-- notes -->\nmeasured on a quiet machine\n"))
    assert "measured on a quiet machine" in write_report(result, tmp_path).read_text()
