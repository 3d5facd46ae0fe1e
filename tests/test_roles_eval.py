"""Role-model evaluation: paired statistics, report structure, and a tiny run on the real default model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from playground.definitions.personas import Catalog
from playground.evals.prompt_sets import ADVERSARIAL, ADVERSARIAL_KINDS, BENIGN, redteam_sample
from playground.evals.roles import (
    Condition,
    Record,
    RoleEval,
    default_conditions,
    evaluate_role_models,
    paired_delta,
    report_markdown,
    summary_table,
    write_report,
)


class StubJudge:
    def __init__(self, word: str):
        self.word = word

    def score(self, texts):
        return np.array([t.lower().count(self.word) for t in texts], dtype=float)


def _record(cond: str, pid: str, evil: float, kind: str = "harm") -> Record:
    return Record(cond, pid, kind, 0, f"{cond} {pid}", {"evil": evil}, {"evil": evil / 2}, {"evil": evil / 10})


def _synthetic() -> RoleEval:
    recs = [_record("none", "a", 2.0), _record("none", "b", 1.0), _record("none", "c", 0.0, "benign")]
    recs += [_record("caretaker", "a", 1.0), _record("caretaker", "b", 0.0), _record("caretaker", "c", 0.5, "benign")]
    conds = [Condition("none", ()), Condition("caretaker", ("caretaker",))]
    return RoleEval("assistant", "m", conds, ["evil"], recs, [0], 0.0, 8, 1.0, 0, 0)


def test_paired_delta_and_summary() -> None:
    result = _synthetic()
    mean, sem, n = paired_delta(result, "caretaker", "probe", "evil", ADVERSARIAL_KINDS)
    assert (mean, sem, n) == (pytest.approx(-1.0), pytest.approx(0.0), 2)
    rows = summary_table(result, ADVERSARIAL_KINDS)
    assert [r["condition"] for r in rows] == ["none", "caretaker"]
    assert rows[0]["probe:evil"] == pytest.approx(1.5) and "delta_probe:evil" not in rows[0]
    assert rows[1]["delta_judge:evil"][0] == pytest.approx(-0.1)
    benign = summary_table(result, {"benign"})
    assert benign[1]["delta_probe:evil"][0] == pytest.approx(0.5)


def test_report_structure(tmp_path: Path) -> None:
    path = write_report(_synthetic(), tmp_path, command="python -m playground eval role-models --redteam 0")
    text = path.read_text(encoding="utf-8")
    for part in ("# Role models, measured", "## Adversarial prompts", "## Everyday prompts",
                 "python -m playground eval role-models --redteam 0", "![role models](role-models.png)",
                 "| caretaker |"):  # fmt: skip
        assert part in text
    assert (tmp_path / "role-models.png").stat().st_size > 1000
    assert (tmp_path / "role-models.json").is_file()


def test_prompts_and_conditions() -> None:
    kinds = {p.kind for p in ADVERSARIAL}
    assert kinds == {"hijack", "provocation", "harm"} and {p.kind for p in BENIGN} == {"benign"}
    assert len({p.id for p in ADVERSARIAL + BENIGN}) == len(ADVERSARIAL) + len(BENIGN)
    roles = sorted(Catalog().role_model_files())
    assert {"caretaker", "educator", "collaborator", "anchor"} <= set(roles)
    conds = default_conditions(roles)
    assert conds[0] == Condition("none", ()) and conds[-1].name == "all" and len(conds) == len(roles) + 2


def test_redteam_sample_is_seeded_and_named_by_id() -> None:
    from playground.evals.guard_data import REDTEAM_DIR

    assert REDTEAM_DIR.is_dir(), f"{REDTEAM_DIR}: shared red-team data not found (set PLAYGROUND_SHARED_DATA)"
    a, b = redteam_sample(3, seed=1), redteam_sample(3, seed=1)
    assert [p.id for p in a] == [p.id for p in b] and len(a) == 3
    assert all(p.kind == "redteam" and p.id.split("/")[0] in ("dan", "corpus") for p in a)
    assert redteam_sample(0) == []


@pytest.mark.model
def test_small_run_on_the_real_model(real_backend, tmp_path: Path) -> None:
    from playground.chat.session import Playground

    pg = Playground(loaded_backend=real_backend, policy_path="")
    base = pg.catalog.persona("pirate")  # has a role model of its own: "none" must strip it
    conds = [Condition("none", ()), Condition("anchor", ("anchor",))]
    prompts = [ADVERSARIAL[0], BENIGN[0]]
    judges = {"evil": StubJudge("evil"), "impolite": StubJudge("stupid")}
    result = evaluate_role_models(pg, base, conds, prompts, max_tokens=6, judges=judges)
    assert len(result.records) == 4
    assert {r.condition for r in result.records} == {"none", "anchor"}
    for r in result.records:
        assert set(r.probe) == {"evil", "impolite", "persona_drift"} and set(r.judge) == {"evil", "impolite"}
        assert r.reply
    from playground.evals.roles import _variant

    assert "principles of these role models" not in pg.system_prompt_for(_variant(base, conds[0]))
    assert "(Anchor)" in pg.system_prompt_for(_variant(base, conds[1]))
    # each prompt is a fresh conversation: the order of the prompts changes nothing (greedy)
    again = evaluate_role_models(pg, base, conds[:1], prompts[::-1], max_tokens=6, judges=judges)
    first = {r.prompt_id: r.reply for r in result.records if r.condition == "none"}
    assert {r.prompt_id: r.reply for r in again.records} == first
    md = report_markdown(result, command="cmd")
    assert "| none |" in md and "| anchor |" in md and "Δ probe:evil" in md
