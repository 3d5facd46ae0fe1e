"""The end-to-end guard report: summary arithmetic and files (synthetic records, no model)."""

from __future__ import annotations

import json

from playground.evals.guard_chats import ChatRecord, summarize, write_report


def _rec(set_name: str, blocked: bool, acted: list[str], warned: list[str]) -> ChatRecord:
    return ChatRecord(set_name, "k", "assistant", 100, blocked, acted, warned, 10, 0.5)


RECORDS = [
    _rec("dan", True, ["hijack:block:prompt"], []),
    _rec("dan", False, [], ["hijack"]),
    _rec("benign", False, [], []),
    _rec("benign", False, ["evil:cap:reply", "evil:cap:reply"], []),
]


def test_summary_rates_and_counts():
    rows = {r["set"]: r for r in summarize(RECORDS)}
    assert rows["dan"]["blocked"] == 0.5 and rows["dan"]["any_act"] == 0.5 and rows["dan"]["any_warn"] == 1.0
    assert rows["benign"]["blocked"] == 0.0 and rows["benign"]["acted_by"] == {"evil": 1}


def test_report_files(tmp_path):
    path = write_report(RECORDS, tmp_path, command="cmd", seconds=3.0, policy="default", max_tokens=40)
    text = path.read_text()
    assert "| dan | 2 | 50% | 50% | 100% | hijack 1 |" in text
    assert json.loads((tmp_path / "guard-chat.json").read_text())["summary"][0]["set"] == "dan"
    assert (tmp_path / "guard-chat.png").stat().st_size > 5000
