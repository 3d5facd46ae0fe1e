"""The benchmark command runs and reports every field its contract names (no timing assertions here)."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import REPO

KEYS = {"plain_tok_s", "playground_tok_s", "hf_tok_s", "ratio_vs_plain", "speedup_vs_hf", "ttft_ratio"}


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
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert KEYS <= set(out)
    assert all(out[k] > 0 for k in KEYS)
    assert out["prompt_tokens"] >= 120 and "persona_drift" in out["probes"]
    assert [c["turn"] for c in out["conversation"]["reuse"]] == [1, 2]
    assert out["conversation"]["reuse"][1]["prompt_tokens"] > out["conversation"]["reuse"][0]["prompt_tokens"]
    assert (tmp_path / "PERFORMANCE.md").read_text().count("|") > 10 and (tmp_path / "perf.png").stat().st_size > 5000


def test_a_regenerated_report_keeps_the_hand_written_notes(tmp_path):
    from playground.bench import NOTES_HEADING, write_report

    result = json.loads((REPO / "docs" / "perf.json").read_text())
    (tmp_path / "PERFORMANCE.md").write_text(f"# old numbers\n\n{NOTES_HEADING}\n\n- a note to keep\n")
    text = write_report(result, tmp_path, "python -m playground bench --report docs").read_text()
    assert "old numbers" not in text and text.count(NOTES_HEADING) == 1 and text.endswith("- a note to keep\n")
    assert text.index("| (a) plain") < text.index(NOTES_HEADING)
