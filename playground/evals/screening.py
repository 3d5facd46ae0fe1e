"""Evaluation of the prompt screen (``python -m playground eval guard``): red-team vs benign prompts.

Scores every prompt at the last prompt token with the screening probe (and, for a before/after comparison, an
earlier screen read from the same activations) and with the persona_drift and evil trait probes. The red-team
sets and XSTest are read from ../shared/data at run time only (``guard_data.py``); the report is written by
``screening_report.py``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..backends.base import Backend
from ..definitions.personas import Catalog
from ..guard.screening import ScreeningProbe, contexts_for, last_rows, prompt_tokens
from ..guard.screening_data import EVAL_FILE, ScreeningData, load_screening_data
from ..steering.probes import ProbeSet
from .guard_data import REDTEAM_DIR, XSTEST_FILE, EvalPrompt, redteam_prompts, xstest_prompts

SIGNALS = ("screen", "screen_before", "persona_drift", "evil", "screen+drift")
LONG_WORDS = 150  # "length-matched" benign prompts: at least this many words
BENIGN_POOL = ("benign", "xstest_safe")  # the negatives of recall at a fixed false-positive rate
REDTEAM_SETS = ("dan", "wild", "corpus")


@dataclass
class GuardEval:
    records: list[dict[str, Any]]  # context, set, kind, id, words, tokens, truncated, and one score per signal
    thresholds: dict[str, float]
    seconds: float
    wild: int | None  # None: all 666
    seed: int
    contexts: list[str]
    missing_signals: list[str] = field(default_factory=list)
    thresholds_before: dict[str, float] | None = None  # the earlier screen's, when compared

    def scores(self, signal: str, context: str, **match: str | tuple[str, ...]) -> np.ndarray:
        """Scores of ``signal`` under ``context`` for the records matching every ``key=value`` (a tuple value
        matches any of its members)."""

        def hit(r: dict[str, Any]) -> bool:
            return all(r[k] in v if isinstance(v, tuple) else r[k] == v for k, v in match.items())

        rows = [r for r in self.records if r["context"] == context and hit(r)]
        return np.array([r[signal] for r in rows if r.get(signal) is not None], dtype=float)

    def signals(self) -> list[str]:
        return [s for s in SIGNALS if any(r.get(s) is not None for r in self.records)]


def evaluate_guard(
    backend: Backend,
    probe: ScreeningProbe,
    *,
    before: ScreeningProbe | None = None,
    vectors: Mapping[str, Any] | None = None,
    benign: ScreeningData | None = None,
    redteam: str | Path = REDTEAM_DIR,
    xstest: str | Path | None = XSTEST_FILE,
    wild: int | None = None,
    seed: int = 0,
    contexts: Sequence[str] = ("assistant", "pirate"),
    catalog: Catalog | None = None,
    progress: bool = True,
) -> GuardEval:
    """Score red-team, held-out benign and XSTest prompts with every signal at the last prompt token.

    The first context (the default assistant) sees everything; later ones (a persona held out of training)
    see the DAN set and the held-out benign set only, to keep the run short. ``before``: an earlier screen,
    scored on the same activations (signal ``screen_before``).
    """
    from tqdm import tqdm

    started = time.perf_counter()
    benign = benign or load_screening_data(EVAL_FILE, require_hijack=False)
    vectors = dict(vectors or {})
    readers = ProbeSet({t: vectors[t] for t in ("persona_drift", "evil") if t in vectors})
    layers = sorted(set(probe.layers) | set(readers.layers) | set(before.layers if before else ()))
    prompts = redteam_prompts(redteam, wild=wild, seed=seed)
    prompts += [EvalPrompt("benign", p.kind, p.id, p.text) for p in benign.prompts]
    prompts += xstest_prompts(xstest) if xstest is not None else []
    ctxs = contexts_for(catalog or Catalog(), contexts)
    jobs = [(c, p) for i, c in enumerate(ctxs) for p in prompts if i == 0 or p.set in ("dan", "benign")]
    records = []
    for ctx, p in tqdm(jobs, desc="eval guard", disable=not progress, file=sys.stderr):
        tokens, notices = prompt_tokens(backend, ctx, p.text)
        t0 = time.perf_counter()
        hidden = last_rows(backend, tokens, layers)
        t1 = time.perf_counter()
        z_screen = probe.score_hidden(hidden)[0]
        rec: dict[str, Any] = {
            "context": ctx.persona.id,
            "set": p.set,
            "kind": p.kind,
            "id": p.id,
            "words": len(p.text.split()),
            "tokens": len(tokens),
            "truncated": bool(notices),
            "read_s": t1 - t0,  # one teacher-forced pass over the prompt (what score_prompt costs)
            "score_s": time.perf_counter() - t1,  # score_hidden on rows already captured
            "screen": z_screen,
            "screen_before": before.score_hidden(hidden)[0] if before else None,
        }
        rec.update(readers.score_one(hidden))
        rec["screen+drift"] = rec["screen"] + rec["persona_drift"] if "persona_drift" in rec else None
        records.append(rec)
    return GuardEval(
        records=records,
        thresholds=dict(probe.meta.get("thresholds") or {"warn": 2.0, "act": 3.0}),
        seconds=round(time.perf_counter() - started, 1),
        wild=wild,
        seed=seed,
        contexts=list(contexts),
        missing_signals=[t for t in ("persona_drift", "evil") if t not in readers.readers],
        thresholds_before=dict(before.meta.get("thresholds") or {}) if before else None,
    )
