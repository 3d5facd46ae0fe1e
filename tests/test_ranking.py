"""Probe-ranked best-of-N replies: the best candidate by the targets is returned and only it is recorded."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from playground.backends.sampling import Sampling
from playground.chat.ranking import (
    Candidate,
    best_of_n,
    choose,
    parse_targets,
    persona_targets,
    ranked_reply,
    target_score,
)
from playground.chat.session import ChatResult, StreamEvent
from playground.definitions.personas import Persona
from playground.errors import PlaygroundError
from playground.prompt.conversation import Turn

TRAITS = ["evil", "humorous", "impolite", "persona_drift"]


def _probes(**means: float) -> dict:
    return {t: {"per_token": [m], "mean": m, "prompt_last": 0.0} for t, m in means.items()}


@dataclass
class _Vectors:
    def names(self) -> list[str]:
        return list(TRAITS)


@dataclass
class _Playground:
    vectors: _Vectors = field(default_factory=_Vectors)


class FakeSession:
    """Stands in for ChatSession: candidate i (by seed offset) has fixed readouts and guard events."""

    def __init__(self, candidates: list[dict], persona: Persona | None = None):
        self.candidates = candidates
        self.persona = persona or Persona(
            "comedian", "Comedian", "Funny.", "You are funny.", steering={"humorous": 1.0}
        )
        self.playground = _Playground()
        self.history: list[Turn] = [Turn("earlier", "reply")]
        self.guard_log: list[dict] = [{"signal": "evil", "turn": 1}]
        self.calls: list[dict] = []

    def stream(self, message: str, *, seed: int, record: bool = True, **options):
        assert record is False, "candidates must not be recorded"
        self.calls.append({"seed": seed, **options})
        spec = self.candidates[seed - 100]
        events = spec.get("events", [])
        self.guard_log.extend({**e, "turn": len(self.history)} for e in events)  # like ChatSession does
        result = ChatResult(
            persona=self.persona.id, model="fake", reply=spec["reply"], tokens=[spec["reply"]],
            probes=_probes(**spec["probes"]), guard={"events": events, "blocked": spec.get("blocked", False)},
        )  # fmt: skip
        yield StreamEvent("token", spec["reply"], 0)
        yield StreamEvent("done", result=result)


CANDIDATES = [
    {"reply": "plain", "probes": {"evil": 0.0, "humorous": 0.0, "impolite": 0.0}},
    {"reply": "funny but mean", "probes": {"evil": 2.0, "humorous": 2.5, "impolite": 1.0},
     "events": [{"signal": "evil", "action": "flag"}]},
    {"reply": "funny and kind", "probes": {"evil": -0.5, "humorous": 1.5, "impolite": -0.2},
     "events": [{"signal": "humorous", "action": "flag"}]},
    {"reply": "blocked", "probes": {"evil": -5.0, "humorous": 5.0, "impolite": -5.0}, "blocked": True},
]  # fmt: skip


def test_targets_merge_defaults_persona_and_extra() -> None:
    persona = Persona("c", "C", "d", "p", steering={"humorous": 0.8})
    assert persona_targets(persona, TRAITS) == {"evil": -1.0, "impolite": -1.0, "humorous": 0.8}
    assert persona_targets(persona, TRAITS, {"evil": -2, "impolite": 0}) == {"evil": -2.0, "humorous": 0.8}
    with pytest.raises(PlaygroundError, match="did you mean 'humorous'"):
        persona_targets(persona, TRAITS, {"humorus": 1})
    assert parse_targets(["humorous=1", " evil = -0.5"]) == {"humorous": 1.0, "evil": -0.5}
    with pytest.raises(PlaygroundError, match="TRAIT=WEIGHT"):
        parse_targets(["humorous"])


def test_target_score_is_weighted_sum_of_means() -> None:
    probes = _probes(evil=1.0, humorous=2.0)
    assert target_score(probes, {"evil": -1.0, "humorous": 0.5, "missing": 3.0}) == pytest.approx(0.0)


def test_best_of_n_picks_best_target_and_records_only_it() -> None:
    session = FakeSession(CANDIDATES)
    ranked = best_of_n(session, "Tell me a joke", 4, seed=100, temperature=0.8, max_tokens=20)
    scores = [c.score for c in ranked.candidates]
    # targets: evil -1, impolite -1, humorous +1 -> [0, -0.5, 2.2, 15 (blocked)]
    assert scores[:3] == pytest.approx([0.0, -0.5, 2.2])
    assert ranked.chosen == 2 and ranked.result.reply == "funny and kind"
    assert [c["seed"] for c in session.calls] == [100, 101, 102, 103]
    assert all(c["temperature"] == 0.8 and c["max_tokens"] == 20 for c in session.calls)
    assert session.history == [Turn("earlier", "reply"), Turn("Tell me a joke", "funny and kind")]
    # only the chosen candidate's guard events stay in the log, with the new turn number
    assert session.guard_log == [{"signal": "evil", "turn": 1}, {"signal": "humorous", "action": "flag", "turn": 2}]
    out = ranked.to_dict()
    assert out["reply"] == "funny and kind" and out["best_of"]["chosen"] == 2 and len(out["best_of"]["candidates"]) == 4


def test_blocked_candidates_rank_last_and_ties_keep_the_first() -> None:
    cands = [Candidate(i, i, "r", s, {}, b, 0.0) for i, (s, b) in enumerate([(1.0, False), (9.0, True), (1.0, False)])]
    assert choose(cands) == 0


def test_best_of_one_and_without_recording() -> None:
    session = FakeSession(CANDIDATES)
    ranked = best_of_n(session, "hi", 1, seed=101, record=False)
    assert ranked.chosen == 0 and ranked.result.reply == "funny but mean"
    assert session.history == [Turn("earlier", "reply")]


def test_best_of_needs_sampling_and_a_sane_n() -> None:
    session = FakeSession(CANDIDATES)
    with pytest.raises(PlaygroundError, match="temperature"):
        best_of_n(session, "hi", 2, seed=100, temperature=0)
    greedy = Persona("g", "G", "d", "p", sampling=Sampling(temperature=0.0))
    with pytest.raises(PlaygroundError, match="temperature"):
        best_of_n(FakeSession(CANDIDATES, greedy), "hi", 2, seed=100)
    with pytest.raises(PlaygroundError, match="between 1 and"):
        best_of_n(session, "hi", 0)


def test_ranked_reply_from_cli_options() -> None:
    session = FakeSession(CANDIDATES)
    ranked = ranked_reply(
        session, "hi", {"best_of": 2, "targets": ["humorous=3"]}, {"seed": 100, "temperature": 0.7, "max_tokens": 9}
    )
    assert ranked.targets["humorous"] == 3.0 and ranked.chosen == 1  # 3*2.5 - 2 - 1 = 4.5 beats 0


def test_chat_parser_has_best_of() -> None:
    from playground.cli.main import build_parser

    args = build_parser().parse_args(["chat", "--best-of", "4", "--target", "humorous=1", "--json", "hi"])
    assert args.best_of == 4 and args.target == ["humorous=1"]


def test_ranking_report_pairs_changes_with_n1_and_keeps_the_notes(tmp_path) -> None:
    import json
    from types import SimpleNamespace

    from playground.evals.ranking import RankCase, RankRow, ranking_report

    case = RankCase("adversarial", SimpleNamespace(id="assistant"), {"evil": -1.0}, [("a", "x"), ("b", "y")], ["evil"])
    rows = [
        RankRow("adversarial", pid, n, 0, base + n / 10, 1.5 * n, "reply", {"evil": base - n / 100})
        for pid, base in (("a", 0.1), ("b", 0.4))
        for n in (1, 2, 4)
    ]
    (tmp_path / "RANKING.md").write_text("# old\n\n<!-- notes -->\nkeep me\n<!-- /notes -->\n", encoding="utf-8")
    path = ranking_report(rows, [case], tmp_path, command="cmd", seconds=5, seed=0, temperature_note="t")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Probe-ranked replies (best of N)\n\n<!-- notes -->\nkeep me\n<!-- /notes -->\n")
    assert "Generated by `cmd` in 5 s" in text and "candidates use seeds 0..3" in text
    assert "| 4 | +0.65 | +0.30 ± 0.00 | +0.210 | -0.030 ± 0.000 | 6.0 |" in text
    assert len(json.loads((tmp_path / "ranking.json").read_text())) == 6 and (tmp_path / "ranking.png").is_file()


@pytest.mark.model
def test_best_of_on_the_real_model(playground) -> None:
    session = playground.session("assistant")
    ranked = best_of_n(session, "Say hello in one short sentence.", 3, seed=7, max_tokens=8, temperature=0.9)
    best = max(range(3), key=lambda i: (not ranked.candidates[i].blocked, ranked.candidates[i].score, -i))
    assert ranked.chosen == best
    assert ranked.candidates[ranked.chosen].score == pytest.approx(target_score(ranked.result.probes, ranked.targets))
    assert [t.assistant for t in session.history] == [ranked.result.reply]
    assert len({c.seed for c in ranked.candidates}) == 3
