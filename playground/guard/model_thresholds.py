"""Reply-phase guard thresholds per model.

The numbers in ``personas/policies/default.yaml`` were derived from ordinary replies of the default model
(``guard-thresholds --ship``). Another model reads its probes on another scale, so for it the shipped policy's
reply-phase ``warn`` / ``act`` numbers are replaced by the ones measured on that model (``prepare`` or
``guard-thresholds`` write them into the user cache as ``<model>/guard/reply_thresholds.json``). A policy file of
the user's own keeps its numbers: someone who wrote them meant them.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from ..backends.model_source import DEFAULT_MODEL
from ..paths import model_dirs
from .policy import DEFAULT_POLICY_PATH, Policy
from .reply_thresholds import Thresholds

PEAKS_FILE = "reply_thresholds.json"
MEASURED_ON = DEFAULT_MODEL  # the model whose replies the shipped policy's reply thresholds come from


def thresholds_files(model_id: str) -> list[Path]:
    """Where a model's measured reply thresholds live, in priority order: the user cache, then the checkout."""
    return [folder / PEAKS_FILE for folder in model_dirs(model_id, "guard")]


@lru_cache(maxsize=16)
def _read(path: str, mtime_ns: int) -> dict[str, Thresholds]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {s: Thresholds(float(t["warn"]), float(t["act"])) for s, t in (data.get("thresholds") or {}).items()}


def measured_thresholds(model_id: str) -> tuple[dict[str, Thresholds], Path] | None:
    """The reply thresholds measured on ``model_id`` and their file, or None when nobody measured them."""
    for path in thresholds_files(model_id):
        if path.is_file():
            return _read(str(path), path.stat().st_mtime_ns), path
    return None


def is_shipped_policy(policy: Policy) -> bool:
    return Path(policy.source) == DEFAULT_POLICY_PATH


def policy_for_model(policy: Policy, model_id: str) -> Policy:
    """``policy`` with ``model_id``'s own reply thresholds, when it is the shipped policy and they were measured."""
    found = measured_thresholds(model_id) if is_shipped_policy(policy) else None
    if not found:
        return policy
    thresholds, path = found
    rules = dict(policy.rules)
    for signal, t in thresholds.items():
        if signal in rules and rules[signal].checks("reply"):
            rules[signal] = replace(rules[signal], warn=t.warn, act=t.act)
    if rules == policy.rules:  # the default model's shipped measurement: the numbers the file already has
        return policy
    return replace(policy, rules=rules, source=f"{policy.source} (reply thresholds of {model_id}: {path})")


def reply_signals(policy: Policy) -> list[str]:
    """The signals the policy checks while a reply is written."""
    return sorted(s for s, r in policy.rules.items() if r.checks("reply"))


__all__ = [
    "MEASURED_ON",
    "PEAKS_FILE",
    "is_shipped_policy",
    "measured_thresholds",
    "policy_for_model",
    "reply_signals",
    "thresholds_files",
]
