"""How many of this process's CPUs other processes are using, and the llama.cpp thread count that follows.

llama.cpp splits every operation of a forward pass over its threads and makes them meet at a barrier after
each one, spinning while they wait. When another process keeps one of two cores busy, one of the two threads
keeps losing its core to it and the other spins at every barrier: measured here (SmolLM2-135M, 128 tokens,
2 cores, one core busy with a plain Python loop), 2 threads made 32 tok/s against 159 tok/s on an idle
machine, while 1 thread made 131 tok/s. ``ThreadFitter`` therefore gives llama.cpp only the CPUs that others
leave free, re-checked before every decode call from a sample taken twice a second
(``python -m playground bench --cpu-load`` measures the effect).

Others' use = all busy time of the CPUs this process may run on (``/proc/stat``) minus this process's own
(``/proc/self/stat``). Where ``/proc`` is missing, nothing is adapted.
"""

from __future__ import annotations

import ctypes
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

SAMPLE_S = 0.5
# A CPU counts as taken when others use more than this share of it (at 0.5 of a core, two threads already
# lose much of their time to the barriers).
TAKEN_ABOVE = 0.3
ADAPT_ENV = "PLAYGROUND_ADAPT_THREADS"  # "0" turns adaptation off (the benchmark's "before")


def _our_cpus() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def _busy_ticks(cpus: set[int]) -> int | None:
    """Busy clock ticks (everything but idle and iowait) of ``cpus`` since boot."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    total = 0
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            values = [int(v) for v in fields]
            total += sum(values) - values[3] - (values[4] if len(values) > 4 else 0)
    return total


def _own_ticks() -> int | None:
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])  # utime + stime of every thread of this process


class CpuShare:
    """Others' CPU use, sampled in a daemon thread every ``SAMPLE_S`` seconds (started on first use)."""

    def __init__(self, interval: float = SAMPLE_S) -> None:
        self.cpus = _our_cpus()
        self.interval = interval
        self._others = 0.0
        self._started = False
        self._lock = threading.Lock()
        self.available = _busy_ticks(self.cpus) is not None and _own_ticks() is not None

    def _sample(self) -> None:
        hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        busy, own, at = _busy_ticks(self.cpus), _own_ticks(), time.monotonic()
        while True:
            time.sleep(self.interval)
            busy2, own2, at2 = _busy_ticks(self.cpus), _own_ticks(), time.monotonic()
            if None in (busy, own, busy2, own2) or at2 <= at:
                continue
            others = ((busy2 - busy) - (own2 - own)) / hz / (at2 - at)  # type: ignore[operator]
            self._others = min(float(len(self.cpus)), max(0.0, others))
            busy, own, at = busy2, own2, at2

    def others_busy(self) -> float:
        """CPUs' worth of this process's CPUs that other processes used over the last sample (0 before one)."""
        if not self._started and self.available:
            with self._lock:
                if not self._started:
                    threading.Thread(target=self._sample, name="cpu-share", daemon=True).start()
                    self._started = True
        return self._others


def fitted_threads(configured: int, n_cpus: int, others_busy: float) -> int:
    """Threads for llama.cpp: at most ``configured``, and no more than the CPUs others leave free (at least 1)."""
    taken = math.floor(others_busy + (1 - TAKEN_ABOVE)) if others_busy > TAKEN_ABOVE else 0
    return max(1, min(configured, n_cpus - taken))


_SHARE: CpuShare | None = None


def cpu_share() -> CpuShare:
    global _SHARE
    if _SHARE is None:
        _SHARE = CpuShare()
    return _SHARE


class ThreadFitter:
    """Sets a llama.cpp context's thread count to ``fitted_threads`` before each decode call (when it changed)."""

    def __init__(self, configured: int, adaptive: bool | None = None) -> None:
        self.configured = configured
        self.adaptive = os.environ.get(ADAPT_ENV, "1") != "0" if adaptive is None else adaptive
        self._set: dict[int, int] = {}

    def threads(self) -> int:
        if not self.adaptive:
            return self.configured
        share = cpu_share()
        return fitted_threads(self.configured, len(share.cpus), share.others_busy())

    def fit(self, ctx: Any) -> int:
        import llama_cpp

        n = self.threads()
        key = ctypes.cast(ctx, ctypes.c_void_p).value or 0
        if self._set.get(key) != n:
            llama_cpp.llama_set_n_threads(ctx, n, n)
            self._set[key] = n
        return n


__all__ = ["CpuShare", "ThreadFitter", "cpu_share", "fitted_threads"]
