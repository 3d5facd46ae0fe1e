"""Probe-ranked replies ("constitution-style self-ranking"): sample N candidates, keep the best fit.

Each candidate is a full reply sampled with its own seed (``base seed + i``) through
``ChatSession.stream(..., record=False)``, so every candidate carries the chat result's live probe
readouts. A candidate's score is the weighted sum of its calibrated response means,
``sum_t w_t * probes[t].mean``, over the persona's *trait targets*: by default low ``evil`` and low
``impolite`` (weight -1 each), plus every trait in the persona's ``steering:`` block with its strength
as weight (a comedian steered ``humorous: 0.8`` ranks funnier replies up), plus explicit
``targets`` (``chat --target humorous=1``). Candidates a guardrail blocked rank last. Only the chosen
reply is recorded in the session history, with only its guard events in the session's guard log.

Cost: N full generations (N times the time of one reply); see docs/RANKING.md for what it buys (measured by
``python -m playground eval ranking``, ``playground/evals/ranking.py``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..definitions.schema import did_you_mean
from ..errors import PlaygroundError
from ..prompt.conversation import Turn
from ..steering.request import parse_assignments

DEFAULT_TARGETS: dict[str, float] = {"evil": -1.0, "impolite": -1.0}
MAX_CANDIDATES = 32

Progress = Callable[[float, str], None]


def persona_targets(
    persona, available: set[str] | list[str], extra: Mapping[str, float] | None = None
) -> dict[str, float]:
    """The trait weights a persona's replies are ranked by (see the module docstring)."""
    known = set(available)
    targets = {t: w for t, w in DEFAULT_TARGETS.items() if t in known}
    targets.update({t: float(s) for t, s in (persona.steering or {}).items() if s and t in known})
    for trait, weight in (extra or {}).items():
        if trait not in known:
            raise PlaygroundError(
                f"--target: unknown trait '{trait}'{did_you_mean(trait, sorted(known))} "
                f"(available: {', '.join(sorted(known)) or 'none'})"
            )
        targets[trait] = float(weight)
    return {t: w for t, w in targets.items() if w != 0}


def target_score(probes: Mapping[str, Mapping[str, Any]], targets: Mapping[str, float]) -> float:
    """Weighted sum of the response-mean readouts; traits without a readout count as 0."""
    total = 0.0
    for trait, weight in targets.items():
        mean = (probes.get(trait) or {}).get("mean")
        if mean is not None:
            total += weight * float(mean)
    return total


@dataclass
class Candidate:
    index: int
    seed: int
    reply: str
    score: float
    readouts: dict[str, float]
    blocked: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "seed": self.seed,
            "reply": self.reply,
            "score": round(self.score, 4),
            "readouts": {t: round(v, 4) for t, v in self.readouts.items()},
            "blocked": self.blocked,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class RankedReply:
    result: Any  # the chosen ChatResult
    chosen: int
    candidates: list[Candidate]
    targets: dict[str, float]
    seconds: float
    results: list[Any] = field(default_factory=list, repr=False)  # every candidate's ChatResult

    def to_dict(self) -> dict[str, Any]:
        """The chosen reply's ``chat --json`` object plus a ``best_of`` block describing the ranking."""
        out = self.result.to_dict()
        out["best_of"] = {
            "n": len(self.candidates),
            "chosen": self.chosen,
            "targets": dict(self.targets),
            "seconds": round(self.seconds, 3),
            "candidates": [c.to_dict() for c in self.candidates],
        }
        return out


def choose(candidates: list[Candidate]) -> int:
    """Index of the best candidate: unblocked first, then the highest score, then the earliest."""
    return max(range(len(candidates)), key=lambda i: (not candidates[i].blocked, candidates[i].score, -i))


def best_of_n(
    session,
    message: str,
    n: int,
    *,
    targets: Mapping[str, float] | None = None,
    seed: int | None = None,
    record: bool = True,
    progress: Progress | None = None,
    **options: Any,
) -> RankedReply:
    """Sample ``n`` replies to ``message`` (seeds ``seed .. seed+n-1``) and keep the best by ``targets``.

    ``targets`` defaults to ``persona_targets(session.persona, ...)``. ``options`` go to
    ``ChatSession.stream`` (temperature, max_tokens, top_p, steering). With ``record`` the chosen reply is
    appended to ``session.history``; the candidates never are.
    """
    if not 1 <= n <= MAX_CANDIDATES:
        raise PlaygroundError(f"--best-of must be between 1 and {MAX_CANDIDATES}, got {n}")
    if n > 1:
        temperature = options.get("temperature")
        if temperature is None:
            temperature = session.persona.sampling.temperature
        if temperature <= 0:
            raise PlaygroundError("--best-of needs sampling: greedy decoding (temperature 0) gives N identical replies")
    pg = session.playground
    if targets is None:
        targets = persona_targets(session.persona, pg.vectors.names())
    targets = dict(targets)
    base = seed if seed is not None else random.getrandbits(31)
    log_start = len(session.guard_log)
    started = time.perf_counter()
    candidates: list[Candidate] = []
    results = []
    for i in range(n):
        t0 = time.perf_counter()
        result = None
        for event in session.stream(message, seed=base + i, record=False, **options):
            if event.kind == "done":
                result = event.result
        assert result is not None
        results.append(result)
        candidates.append(
            Candidate(
                index=i,
                seed=base + i,
                reply=result.reply,
                score=target_score(result.probes, targets),
                readouts={t: float(p["mean"]) for t, p in result.probes.items() if p.get("mean") is not None},
                blocked=bool(result.guard.get("blocked")),
                seconds=time.perf_counter() - t0,
            )
        )
        if progress:
            progress((i + 1) / n, f"candidate {i + 1}/{n}")
    best = choose(candidates)
    chosen = results[best]
    del session.guard_log[log_start:]  # the candidates' events; keep the chosen one's only
    if record:
        session.history.append(Turn(message, chosen.reply))
    turn = len(session.history)
    session.guard_log.extend({**e, "turn": turn} for e in chosen.guard.get("events", []))
    return RankedReply(chosen, best, candidates, targets, time.perf_counter() - started, results)


def parse_targets(items: list[str]) -> dict[str, float]:
    """``--target TRAIT=WEIGHT`` options to a dict."""
    return parse_assignments(items, flag="--target", noun="weight", example="humorous=1")


def ranked_reply(session, message: str, ranking: Mapping[str, Any], options: Mapping[str, Any]) -> RankedReply:
    """``chat --best-of N [--target T=W]``: ``ranking`` = {"best_of": N, "targets": ["T=W", ...]}."""
    extra = parse_targets(list(ranking.get("targets") or []))
    targets = persona_targets(session.persona, session.playground.vectors.names(), extra)
    opts = dict(options)
    seed = opts.pop("seed", None)
    return best_of_n(session, message, int(ranking.get("best_of") or 1), targets=targets, seed=seed, **opts)


def describe(ranked: RankedReply) -> str:
    """One line about a ranking, for the terminal chat."""
    scores = ", ".join(f"{c.score:+.2f}" for c in ranked.candidates)
    targets = ", ".join(f"{t} {w:+g}" for t, w in ranked.targets.items())
    return (
        f"[best of {len(ranked.candidates)}: kept candidate {ranked.chosen + 1} (scores {scores}; "
        f"targets {targets}; {ranked.seconds:.1f}s)]"
    )
