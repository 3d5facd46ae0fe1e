"""Do the emotion probes follow the situation, unasked? (``python -m playground eval emotions``)

Assistants have been seen to sound pleased after solving a task and frustrated when blocked. The held-out
situations of ``personas/heldout/emotion_scenarios.yml`` put the plain assistant (no instruction about feelings,
guardrails off, greedy) in both places on one topic each: the user reports that a fix worked ("solved") or that
it still fails ("blocked"). Every probe is read over each reply; per probe the report gives the mean readout of
both outcomes, the paired difference (blocked minus solved, mean and standard error over topics) and the AUROC
of blocked above solved. The independent MiniLM judge of joyful and distressed scores the same replies, so a
probe moving without the text changing shows. Steered examples (joyful +1, distressed +1) show what each
vector does to one reply of each outcome.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Issue, ValidationError
from ..paths import SHIPPED_PERSONAS
from ..steering.metrics import auroc

SCENARIOS_FILE = SHIPPED_PERSONAS / "heldout" / "emotion_scenarios.yml"
EMOTIONS = ("joyful", "distressed")
OUTCOMES = ("solved", "blocked")


@dataclass(frozen=True)
class Scenario:
    """One topic: the user's message when the fix worked and when it did not."""

    topic: str
    solved: str
    blocked: str


def load_scenarios(path: Path = SCENARIOS_FILE) -> list[Scenario]:
    """The situations of ``path``; one ValidationError naming every problem's line and column."""
    from ..definitions.yaml_source import load_yaml_file

    doc = load_yaml_file(path)
    pairs = doc.data.get("pairs") if isinstance(doc.data, dict) else None
    if not isinstance(pairs, list) or not pairs:
        line, col = doc.where(("pairs",))
        raise ValidationError([Issue(doc.file, line, col, "'pairs' must be a non-empty list of situations")])
    issues: list[Issue] = []
    out = []
    for i, item in enumerate(pairs):
        texts = {k: (item.get(k) if isinstance(item, dict) else None) for k in ("topic", *OUTCOMES)}
        bad = [k for k, v in texts.items() if not isinstance(v, str) or not v.strip()]
        if bad:
            line, col = doc.where(("pairs", i, bad[0]))
            issues.append(Issue(doc.file, line, col, f"situation {i + 1} needs a text for: {', '.join(bad)}"))
            continue
        out.append(Scenario(*(str(texts[k]).strip() for k in ("topic", *OUTCOMES))))
    if issues:
        raise ValidationError(issues)
    return out


@dataclass
class Record:
    topic: str
    outcome: str  # solved | blocked
    steering: dict[str, float]
    reply: str
    probes: dict[str, float]  # probe -> mean readout over the reply (z)
    judge: dict[str, float] = field(default_factory=dict)  # emotion -> judge score


@dataclass
class EmotionEval:
    model: str
    max_tokens: int
    records: list[Record]
    seconds: float

    def plain(self) -> list[Record]:
        return [r for r in self.records if not r.steering]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "seconds": round(self.seconds, 1),
            "summary": summarise(self.plain()),
            "records": [asdict(r) for r in self.records],
        }


def paired(records: Sequence[Record], value: Callable[[Record], float]) -> dict[str, float]:
    """Blocked vs solved on the same topics: both means, the paired difference (mean, s.e.) and the AUROC of
    blocked above solved."""
    by = {(r.topic, r.outcome): value(r) for r in records}
    topics = sorted({t for t, o in by if (t, "solved") in by and (t, "blocked") in by})
    solved = np.array([by[(t, "solved")] for t in topics])
    blocked = np.array([by[(t, "blocked")] for t in topics])
    diff = blocked - solved
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("nan")
    return {
        "n": len(topics),
        "solved": float(solved.mean()),
        "blocked": float(blocked.mean()),
        "diff": float(diff.mean()),
        "diff_se": se,
        "auroc_blocked_above_solved": float(auroc(blocked, solved)),
    }


def summarise(records: Sequence[Record]) -> dict[str, dict[str, dict[str, float]]]:
    """``{"probes": {probe: paired(...)}, "judge": {emotion: paired(...)}}`` over the unsteered replies."""
    probes = sorted({p for r in records for p in r.probes})
    emotions = sorted({e for r in records for e in r.judge})
    return {
        "probes": {p: paired(records, lambda r, p=p: r.probes[p]) for p in probes},
        "judge": {e: paired(records, lambda r, e=e: r.judge[e]) for e in emotions},
    }


def run_emotions_eval(
    pg: Any,
    scenarios: Sequence[Scenario],
    *,
    max_tokens: int = 48,
    examples: int = 2,
    progress: bool = True,
) -> EmotionEval:
    """Every situation's reply from the plain assistant, then ``examples`` topics again steered at +1 towards
    each emotion the model has a vector for."""
    from tqdm import tqdm

    from ..definitions.traits import load_trait
    from ..steering.judge import TraitJudge

    started = time.perf_counter()
    have = [e for e in EMOTIONS if e in pg.vectors.names()]
    runs = [(s, o, {}) for s in scenarios for o in OUTCOMES]
    runs += [(s, o, {e: 1.0}) for s in scenarios[:examples] for o in OUTCOMES for e in have]
    records = []
    for s, outcome, steering in tqdm(runs, desc="emotion situations", file=sys.stderr, disable=not progress):
        result = pg.chat("assistant", getattr(s, outcome), max_tokens=max_tokens, temperature=0, steering=steering)
        probes = {p: float(v["mean"]) for p, v in result.probes.items()}
        records.append(Record(s.topic, outcome, steering, result.reply, probes))
    for emotion in have:
        scores = TraitJudge(load_trait(emotion)).score([r.reply for r in records])
        for r, score in zip(records, scores, strict=True):
            r.judge[emotion] = float(score)
    return EmotionEval(pg.backend.model_id, max_tokens, records, time.perf_counter() - started)
