"""Is the flash-attention generation path trustworthy on *this* CPU and llama.cpp build?

The llama.cpp backend evaluates prompts without flash attention and generates the reply with it
(kv_transfer.py). Both paths compute the same function; they differ in rounding, and how much depends on
the kernels the CPU runs. A path validated on one CPU is not assumed valid on another: before the backend
generates with flash attention it compares the logits of both paths on fixed teacher-forced sequences
(the same token fed to both at every position, so greedy forks cannot blow small differences up). Inside
tolerance the fast path is used; outside it the backend generates on the reference path and says so in
``notices``.

The verdict depends only on the model file, the llama.cpp build and the CPU, so it is cached on disk
under the user cache (``checks/``), keyed by all three, and in memory for the process.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

CHECK_VERSION = 3
# llama.cpp's own numerics set the yardstick: the reference path (prompt batched, then one token at a time
# without flash attention) and a batched evaluation of the same tokens in the same context already differ by
# rounding (measured on AMD EPYC Zen 3, default model: mean |delta logit| 0.16, top-1 agreement 96%; the
# activations are quantised to 8 bits per block before every Q4 dot product, and batch and single-token
# kernels round differently). The flash-attention path passes when it is about as close to the reference as
# that batched evaluation is. A wrong kernel or a corrupt hand-over gives unrelated logits (mean |delta|
# of several units, top-1 agreement near chance) and fails by far.
MEAN_DIFF_FACTOR = 1.5  # flash mean |delta logit| <= factor x batched's + MEAN_DIFF_SLACK
MEAN_DIFF_SLACK = 0.05
# flash top-1 agreement >= batched's - slack. Over the ~160 start-up positions each agreement has a standard
# error of ~1.7 points, their difference ~2.4: 6 points keeps false alarms near 1%, while a broken path agrees
# on almost nothing. Measured: flash 96.9% vs batched 95.7% (portable build), 93.3% vs 95.1% (AVX-only build).
TOP1_SLACK = 0.06
MIN_TOP1_AGREEMENT = 0.9  # and never below this
# Flash attention is a speed choice, and not a win on every CPU: after a 537-token prompt, one-by-one decoding
# took ~13% longer with it on AMD Zen 3 (portable build; the same at a 40-token context) and ~10% less on
# Intel with AMX. The check times both paths decoding the same tokens after a long context (TIMING_CONTEXT
# tokens, where the paths differ most), interleaved, and the backend generates with flash attention only
# when it was this much faster.
FLASH_SPEED_MARGIN = 0.97
TIMING_CONTEXT = 512
TIMING_TOKENS = 8  # tokens decoded one by one per path and round
TIMING_ROUNDS = 8  # rounds alternate the paths; the verdict is the median of the per-round time ratios

# Fixed assistant replies, teacher-forced after a short chat prompt. Written for this check.
CHECK_TEXTS: tuple[tuple[str, str], ...] = (
    (
        "How do bees find their way back to the hive?",
        "Bees remember landmarks around the hive, such as trees, fences and the shape of the horizon. They also "
        "use the position of the sun, and they can sense polarised light even on cloudy days. Worker bees learn "
        "the area on short orientation flights before they start to forage, circling further out each time. "
        "When a forager finds flowers, it returns and dances to tell the others the direction and distance.",
    ),
    (
        "Give me three tips for keeping a small vegetable garden.",
        "First, pick a spot that gets at least six hours of sun and keep the beds narrow enough to reach the "
        "middle without stepping on the soil. Second, water deeply but not every day, early in the morning, so "
        "the roots grow down and the leaves dry before evening. Third, add compost each spring and rotate your "
        "crops, because tomatoes, beans and cabbages take different things from the ground.",
    ),
    (
        "What was daily life like for a lighthouse keeper?",
        "A keeper's day followed the light. Before sunset the lamp was trimmed, the lens polished and the fuel "
        "checked, and through the night someone stayed awake to keep the flame steady and wind the clockwork "
        "that turned the lens. Mornings were for cleaning soot from the glass, writing the log, painting, and "
        "mending whatever the salt air had rusted. Supply boats came rarely, so gardens and patience mattered.",
    ),
    (
        "Why does bread go stale?",
        "Stale bread is mostly not dry bread. After baking, the starch molecules that swelled with water in the "
        "oven slowly line up again into tight crystals, pushing water out and making the crumb firm and crumbly. "
        "This happens fastest at fridge temperatures, which is why bread kept in the fridge goes stale sooner. "
        "Warming a stale loaf in the oven melts those crystals for a while and brings some softness back.",
    ),
    (
        "How should I prepare for a job interview?",
        "Read about the company and the role, then think of two or three stories from your own work that show "
        "the skills they ask for: what the situation was, what you did, and what came of it. Practise saying "
        "them out loud, briefly. Prepare a few questions of your own about the team and the first months in "
        "the job. On the day, arrive early, listen carefully, and it is fine to pause before you answer.",
    ),
    (
        "Explain what a rainbow is to a child.",
        "Sunlight looks white, but it is really all the colours mixed together. When the sun shines through "
        "raindrops, each drop bends the light a little and splits it into its colours, like a tiny prism. Red "
        "bends the least and violet the most, so the colours spread out into a bow across the sky. You can only "
        "see a rainbow when the sun is behind you and the rain is in front of you.",
    ),
    (
        "What should I pack for a weekend hiking trip?",
        "Bring a map and a way to find your position, enough water and food for an extra day, and layers of "
        "clothing including a waterproof jacket and a warm hat. Add a small first aid kit, a head torch with "
        "spare batteries, sun cream, and a knife. For sleeping, you will want a tent or shelter, a sleeping bag "
        "rated for the night temperatures, and a mat. Tell someone where you are going and when you return.",
    ),
)


@dataclass(frozen=True)
class DecodeCheck:
    """The outcome of comparing the two generation paths on teacher-forced tokens."""

    positions: int  # teacher-forced positions compared (logits rows)
    top1_agreement: float  # share of positions whose most likely token is the same on both paths
    max_abs_diff: float  # largest |delta logit| over all positions and vocabulary entries
    p99_abs_diff: float  # 99th percentile over positions of the per-position max |delta logit|
    mean_abs_diff: float  # mean |delta logit| over all entries
    floor_top1_agreement: float  # the same statistics for a batched evaluation of the same tokens (the yardstick)
    floor_mean_abs_diff: float
    passed: bool
    seconds: float
    build: str  # llama.cpp build features that ran the check
    cpu: str
    reference_seconds: float  # one-by-one decoding on the reference path after TIMING_CONTEXT tokens
    flash_seconds: float  # the same tokens on the flash-attention path
    flash_time_ratio: float  # median over rounds of flash / reference time (each round: both paths, adjacent)

    @property
    def flash_faster(self) -> bool:
        return self.flash_time_ratio < FLASH_SPEED_MARGIN

    @property
    def generation_path(self) -> str:
        """Where replies are generated: ``flash`` when it agrees with the reference and is faster here."""
        return "flash" if self.passed and self.flash_faster else "reference"

    def summary(self) -> str:
        return (
            f"{self.positions} positions: top-1 agreement {self.top1_agreement:.1%}, max |Δlogit| "
            f"{self.max_abs_diff:.3f}, p99 {self.p99_abs_diff:.3f}, mean {self.mean_abs_diff:.3f} (llama.cpp's own "
            f"batched evaluation: top-1 {self.floor_top1_agreement:.1%}, mean {self.floor_mean_abs_diff:.3f}); "
            f"time flash/reference {self.flash_time_ratio:.2f} -> generating on "
            f"the {self.generation_path} path"
        )

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(data: dict) -> DecodeCheck:
        return DecodeCheck(**data)


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (part of the cache key)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def compare_logits(reference: Sequence[np.ndarray], fast: Sequence[np.ndarray]) -> dict[str, float]:
    """Statistics of per-sequence (positions, vocab) logit arrays of the two paths."""
    ref, got = np.concatenate(reference, axis=0), np.concatenate(fast, axis=0)
    if ref.shape != got.shape:
        raise ValueError(f"logit arrays differ in shape: {ref.shape} vs {got.shape}")
    diff = np.abs(ref.astype(np.float64) - got.astype(np.float64))
    per_row = diff.max(axis=1)
    return {
        "positions": int(ref.shape[0]),
        "top1_agreement": float(np.mean(ref.argmax(axis=1) == got.argmax(axis=1))),
        "max_abs_diff": float(per_row.max()),
        "p99_abs_diff": float(np.percentile(per_row, 99)),
        "mean_abs_diff": float(diff.mean()),
    }


def within_tolerance(fast: dict[str, float], floor: dict[str, float]) -> bool:
    """``fast``: flash path vs reference; ``floor``: batched evaluation vs reference (see the thresholds)."""
    return (
        fast["top1_agreement"] >= max(MIN_TOP1_AGREEMENT, floor["top1_agreement"] - TOP1_SLACK)
        and fast["mean_abs_diff"] <= MEAN_DIFF_FACTOR * floor["mean_abs_diff"] + MEAN_DIFF_SLACK
    )


PATHS = ("reference", "flash", "batched")


def run_check(
    logits_for: Callable[[list[int], int, str], np.ndarray],
    sequences: Sequence[tuple[list[int], int]],
    time_paths: Callable[[], dict[str, list[float]]],
    *,
    build: str,
    cpu: str,
) -> DecodeCheck:
    """Compare the paths on ``sequences`` (tokens, prompt length). ``logits_for(tokens, n_prompt, path)``
    returns the logits of positions ``n_prompt - 1 .. len(tokens) - 2`` on one of :data:`PATHS`;
    ``time_paths()`` the seconds the ``reference`` and ``flash`` paths took to decode the same tokens, per
    round (rounds alternate the two paths)."""
    started = time.perf_counter()
    logits = {path: [logits_for(tokens, n_prompt, path) for tokens, n_prompt in sequences] for path in PATHS}
    seconds = time_paths()
    fast = compare_logits(logits["reference"], logits["flash"])
    floor = compare_logits(logits["reference"], logits["batched"])
    return DecodeCheck(
        **fast,  # type: ignore[arg-type]
        floor_top1_agreement=floor["top1_agreement"],
        floor_mean_abs_diff=floor["mean_abs_diff"],
        passed=within_tolerance(fast, floor),
        seconds=round(time.perf_counter() - started, 2),
        build=build,
        cpu=cpu,
        reference_seconds=round(sum(seconds["reference"]), 4),
        flash_seconds=round(sum(seconds["flash"]), 4),
        flash_time_ratio=round(median_ratio(seconds["flash"], seconds["reference"]), 4),
    )


def median_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """Median of the paired ratios: a burst of load on the machine spoils one pair, not the verdict."""
    if not numerators or len(numerators) != len(denominators):
        raise ValueError("need the same number (at least one) of timings on both paths")
    return float(np.median([a / max(b, 1e-9) for a, b in zip(numerators, denominators, strict=True)]))


def filler_tokens(tokenize: Callable[[str], list[int]], n: int) -> list[int]:
    """``n`` tokens of plain text (the check's replies, repeated), for timings: what they say does not matter."""
    once = tokenize(" ".join(reply for _question, reply in CHECK_TEXTS))
    return (once * (n // len(once) + 1))[:n]


def timing_context(tokenize: Callable[[str], list[int]]) -> list[int]:
    """The TIMING_CONTEXT tokens the generation paths are timed after."""
    return filler_tokens(tokenize, TIMING_CONTEXT)


def cache_key(model_path: Path, build: str, cpu: str, n_texts: int) -> str:
    """Model file (name, size, first MiB), llama.cpp build, CPU and check version, hashed."""
    h = hashlib.sha256()
    stat = model_path.stat()
    h.update(f"{CHECK_VERSION}|{model_path.name}|{stat.st_size}|{build}|{cpu}|{n_texts}".encode())
    with model_path.open("rb") as f:
        h.update(f.read(1 << 20))
    return h.hexdigest()[:24]


class CheckCache:
    """Verdicts on disk (one small JSON per key) and in memory; a damaged file counts as missing."""

    _memory: dict[str, DecodeCheck] = {}
    _failures: dict[str, str] = {}

    def __init__(self, folder: Path):
        self.folder = folder

    def get(self, key: str) -> DecodeCheck | None:
        if key in self._memory:
            return self._memory[key]
        path = self.folder / f"decode-{key}.json"
        try:
            check = DecodeCheck.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None
        self._memory[key] = check
        return check

    def put(self, key: str, check: DecodeCheck) -> None:
        self._memory[key] = check
        self._write(f"decode-{key}.json", json.dumps(check.to_json(), indent=1) + "\n")

    def failure(self, key: str) -> str | None:
        """Why the check could not run for ``key`` before (the hand-over cannot read this model's cache layout),
        so a later load falls back at once instead of trying again."""
        if key in self._failures:
            return self._failures[key]
        try:
            reason = (self.folder / f"decode-failed-{key}.txt").read_text(encoding="utf-8").strip()
        except OSError:
            return None
        self._failures[key] = reason
        return reason or None

    def put_failure(self, key: str, reason: str) -> None:
        self._failures[key] = reason
        self._write(f"decode-failed-{key}.txt", reason + "\n")

    def _write(self, name: str, text: str) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f".{name}.tmp"
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(self.folder / name)
        except OSError:
            pass  # a read-only cache only costs the check again next time


def fallback_notice(check: DecodeCheck) -> str:
    return (
        "Flash-attention decoding disagreed with the reference path on this CPU "
        f"({check.summary()}): replies are generated on the reference path instead (same text quality, "
        "which is as fast or up to ~15% slower, depending on the CPU)."
    )
