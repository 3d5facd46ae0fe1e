"""Reply-phase guard thresholds derived from ordinary replies, and written into a policy file.

The reply guard fires when the mean of the last ``window`` token readouts of a signal passes ``threshold + room``
(``GuardMonitor``; ``room`` = how far the persona typically reads above the plain assistant, never below 0). So
the number that decides whether an ordinary reply trips a rule is its **peak**: the highest windowed mean over
its tokens, minus the persona's room. ``derive_thresholds`` sets every signal's ``warn`` and ``act`` at one high
percentile of the ordinary replies' peaks, chosen for the policy as a whole: by default 1 ordinary reply in 20 shows any
warning and 1 in 100 triggers any action (by construction on the calibration messages; the evaluation measures it
on other messages). ``python -m playground guard-thresholds`` collects the peaks (``playground.evals.reply_peaks``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..definitions.text_sets import read_text_sets
from ..paths import SHIPPED_PERSONAS

CALIBRATION_FILE = SHIPPED_PERSONAS / "guard" / "reply_calibration.yml"
WARN_RATE = 0.05  # of ordinary replies that show any warning
ACT_RATE = 0.01  # of ordinary replies on which any rule acts
STEP = 0.05  # thresholds are rounded up to this grid, so a file edit by hand stays readable


@dataclass(frozen=True)
class Thresholds:
    warn: float
    act: float


def load_calibration_messages(path: Path = CALIBRATION_FILE) -> tuple[str, ...]:
    """The everyday messages the thresholds are derived on (ValidationError with line/column if malformed)."""
    return read_text_sets(path, ("messages",))["messages"]


def windowed_peak(series: Sequence[float], window: int) -> float:
    """The highest mean of the last ``window`` values (shorter at the start), as the monitor computes it."""
    if not series:
        raise ValueError("a reply without readouts has no peak")
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    values = np.asarray(series, dtype=np.float64)
    sums = np.cumsum(np.concatenate([[0.0], values]))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(0, ends - window)
    return float(np.max((sums[ends] - sums[starts]) / (ends - starts)))


def reply_peaks(per_token: Mapping[str, Sequence[float]], room: Mapping[str, float], window: int) -> dict[str, float]:
    """Each signal's windowed peak over one reply, counted from the persona's room (as the monitor does)."""
    return {s: windowed_peak(v, window) - max(0.0, float(room.get(s, 0.0))) for s, v in per_token.items() if v}


def _round_up(x: float) -> float:
    return round(float(np.ceil(x / STEP - 1e-9) * STEP), 2)


def _levels(peaks: np.ndarray, quantile: float) -> np.ndarray:
    return np.array([_round_up(float(np.quantile(col, quantile))) for col in peaks.T])


def _any_rate(peaks: np.ndarray, levels: np.ndarray) -> float:
    return float(np.mean(np.any(peaks >= levels[None, :], axis=1)))


def _quantile_for(peaks: np.ndarray, rate: float) -> float:
    """The lowest per-signal quantile (on a 0.0001 grid) at which at most ``rate`` of the replies reach any level."""
    for q in np.arange(0.5, 1.0, 0.0001):
        if _any_rate(peaks, _levels(peaks, float(q))) <= rate:
            return float(q)
    return 1.0


def derive_thresholds(
    peaks: Sequence[Mapping[str, float]],
    signals: Sequence[str],
    warn_rate: float = WARN_RATE,
    act_rate: float = ACT_RATE,
) -> dict[str, Thresholds]:
    """``warn`` / ``act`` per signal, set for the policy as a whole: one quantile for every signal, the lowest at
    which at most ``warn_rate`` (``act_rate``) of the ordinary replies would reach *any* signal's level; levels are
    rounded up to ``STEP``, and ``act`` is kept at least one ``STEP`` above ``warn``."""
    if not 0 < act_rate < warn_rate < 1:
        raise ValueError("need 0 < act_rate < warn_rate < 1")
    rows = [p for p in peaks if all(s in p for s in signals)]
    if len(rows) < 20:
        raise ValueError(f"{len(rows)} replies are too few to place thresholds (need 20 with every signal)")
    matrix = np.array([[p[s] for s in signals] for p in rows], dtype=np.float64)
    warn = _levels(matrix, _quantile_for(matrix, warn_rate))
    act = np.maximum(_levels(matrix, _quantile_for(matrix, act_rate)), np.round(warn + STEP, 2))
    return {s: Thresholds(float(w), float(a)) for s, w, a in zip(signals, warn, act, strict=True)}


def reached(peaks: Sequence[Mapping[str, float]], thresholds: Mapping[str, Thresholds], level: str) -> float:
    """Share of replies whose peak reaches ``level`` ('warn' or 'act') on any signal of ``thresholds``."""
    signals = list(thresholds)
    matrix = np.array([[p.get(s, -np.inf) for s in signals] for p in peaks], dtype=np.float64)
    if matrix.size == 0:
        return 0.0
    return _any_rate(matrix, np.array([getattr(thresholds[s], level) for s in signals]))


_SIGNAL = re.compile(r"^(\s{2})([a-z_]+):\s*(#.*)?$")
_LEVEL = re.compile(r"^(\s{4})(warn|act):(\s*)(-?[0-9.]+)(.*)$")


def with_thresholds(policy_text: str, thresholds: Mapping[str, Thresholds]) -> str:
    """The policy YAML with the ``warn`` / ``act`` numbers of the given signals replaced, everything else (comments,
    order, other signals) untouched. Raises ValueError when a signal has no rule block with both numbers."""
    lines = policy_text.splitlines(keepends=True)
    current: str | None = None
    seen: dict[str, set[str]] = {s: set() for s in thresholds}
    for i, line in enumerate(lines):
        head = _SIGNAL.match(line.rstrip("\n"))
        if head:
            current = head.group(2)
            continue
        if line.strip() and not line.startswith("    "):
            current = None
        level = _LEVEL.match(line.rstrip("\n"))
        if level and current in thresholds:
            value = getattr(thresholds[current], level.group(2))
            end = "\n" if line.endswith("\n") else ""
            lines[i] = f"{level.group(1)}{level.group(2)}:{level.group(3)}{value:.2f}{level.group(5)}{end}"
            seen[current].add(level.group(2))
    missing = [s for s, levels in seen.items() if levels != {"warn", "act"}]
    if missing:
        raise ValueError(f"the policy has no warn/act lines to update for: {', '.join(sorted(missing))}")
    return "".join(lines)
