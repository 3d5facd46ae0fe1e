"""Bench hygiene for ``python -m playground bench``: contenders in worker processes, quiet checks, the baseline rule.

- ``Worker``: the parent's handle on one ``playground.evals.bench.worker`` process (JSON lines over its stdin/stdout).
- ``QuietLog.check``: before each measured run, sample the other bench processes' CPU time
  (``/proc/<pid>/stat``) and the whole machine's idle share (``/proc/stat``) over ``QUIET_WINDOW_S``; wait
  while something is busy (at most ``QUIET_MAX_WAIT_S``) and count the runs that had to wait or were measured
  while something else was busy anyway.
- ``settle``: between the benchmark's legs, every child process of the bench has exited (a straggler is
  terminated and named in the result) and this process is quiet, so no leg measures alongside an earlier one.
- ``baseline_verdict``: the bench's plain llama-cpp-python against the same run in a fresh process of its own;
  below ``BASELINE_FACTOR`` of it the bench measured a slowed machine, and its ratios are not reported.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...paths import REPO_ROOT

QUIET_WINDOW_S = 0.2  # one sample of CPU use
QUIET_MAX_WAIT_S = 3.0  # how long a run waits for quiet before it is measured anyway (and counted busy)
WORKER_BUSY_CORES = 0.1  # the other bench processes together use more than this share of one core: busy
MACHINE_BUSY_CORES = 0.5  # the whole machine uses more than this many cores: busy
BASELINE_FACTOR = 0.8  # the bench's plain median must reach this share of a fresh process's plain median
BASELINE_EXIT = 3  # exit status of ``python -m playground bench`` when the baseline check fails
SETTLE_TIMEOUT_S = 15.0  # how long a leg's child processes get to exit before they are terminated
RATIO_KEYS = ("ratio_vs_plain", "speedup_vs_hf", "ttft_ratio")
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (field 3, the state, comes first)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a whole process (all its threads); 0 when it is gone."""
    try:
        fields = _stat_fields(pid)
    except (OSError, ValueError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def machine_ticks() -> tuple[int, int]:
    """(idle, total) jiffies of all CPUs from ``/proc/stat``; (0, 0) where there is none."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return 0, 0
    values = [int(v) for v in first[1:9]]  # user nice system idle iowait irq softirq steal
    return values[3] + values[4], sum(values)


@dataclass
class Sample:
    bench_cores: float  # CPU use of the watched bench processes, in cores
    machine_cores: float  # CPU use of the whole machine, in cores

    @property
    def bench_busy(self) -> bool:
        return self.bench_cores > WORKER_BUSY_CORES

    @property
    def machine_busy(self) -> bool:
        return self.machine_cores > MACHINE_BUSY_CORES

    @property
    def busy(self) -> bool:
        return self.bench_busy or self.machine_busy


def sample(pids: Iterable[int], window: float = QUIET_WINDOW_S) -> Sample:
    """CPU use over ``window`` seconds of the processes ``pids`` and of the whole machine."""
    pids = list(pids)
    cpu0, (idle0, total0), t0 = sum(cpu_seconds(p) for p in pids), machine_ticks(), time.perf_counter()
    time.sleep(window)
    cpu1, (idle1, total1), t1 = sum(cpu_seconds(p) for p in pids), machine_ticks(), time.perf_counter()
    busy_share = 1 - (idle1 - idle0) / (total1 - total0) if total1 > total0 else 0.0
    return Sample((cpu1 - cpu0) / (t1 - t0), busy_share * (os.cpu_count() or 1))


def wait_quiet(pids: Iterable[int], max_wait: float = QUIET_MAX_WAIT_S) -> tuple[float, Sample]:
    """Sample until nothing is busy or ``max_wait`` is over; returns the seconds waited (0 when the first sample
    was quiet) and the last sample."""
    pids, started = list(pids), time.perf_counter()
    last = sample(pids)
    waited = 0.0
    while last.busy and waited < max_wait:
        last = sample(pids)
        waited = time.perf_counter() - started - QUIET_WINDOW_S
    return waited, last


@dataclass
class QuietLog:
    """How the measured runs found the machine: checked, had to wait, measured while something was busy."""

    checked: int = 0
    waited: int = 0
    busy: int = 0  # measured while something was busy: ...
    busy_bench: int = 0  # ... another bench process (or a thread of the parent)
    busy_machine: int = 0  # ... the machine as a whole (other work, or the bench itself)
    by_contender: dict[str, dict[str, int]] = field(default_factory=dict)

    def check(self, name: str, others: Iterable[int]) -> None:
        """Wait (a while) until the other bench processes ``others``, this process and the machine are idle."""
        waited, last = wait_quiet(list(others) + [os.getpid()])
        flags = {
            "checked": True,
            "waited": waited > 0,
            "busy": last.busy,
            "busy_bench": last.bench_busy,
            "busy_machine": last.machine_busy,
        }
        row = self.by_contender.setdefault(name, dict.fromkeys(flags, 0))
        for key, flag in flags.items():
            row[key] += int(flag)
            setattr(self, key, getattr(self, key) + int(flag))

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "waited": self.waited,
            "busy": self.busy,
            "busy_bench": self.busy_bench,
            "busy_machine": self.busy_machine,
            "by_contender": self.by_contender,
            "window_s": QUIET_WINDOW_S,
            "max_wait_s": QUIET_MAX_WAIT_S,
            "busy_if": f"bench processes > {WORKER_BUSY_CORES} core or machine > {MACHINE_BUSY_CORES} cores",
        }


class WorkerError(RuntimeError):
    pass


class Worker:
    """A ``playground.evals.bench.worker`` process: started with its spec, then one measured run per ``run`` call."""

    def __init__(self, name: str, spec: dict[str, Any]):
        self.name = name
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "playground.evals.bench.worker"],
            cwd=REPO_ROOT,  # the checkout this module comes from
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            encoding="utf-8",
        )
        self._send(spec)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def _receive(self, key: str) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        answer = json.loads(line) if line.strip() else {"error": f"exited ({self.proc.poll()})\n{self._err_tail()}"}
        if "error" in answer:
            raise WorkerError(f"bench worker {self.name}: {answer['error']}")
        return answer[key]

    def _err_tail(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")[-3000:]

    def ready(self) -> dict[str, Any]:
        """Wait until the model is loaded; what the worker tells about itself."""
        return self._receive("ready")

    def run(self, n: int) -> dict[str, float]:
        """One generation of ``n`` tokens: ``{"ttft", "tokens", "total"}``."""
        self._send({"cmd": "run", "n": n})
        return self._receive("run")

    def close(self, timeout: float = 30.0) -> None:
        """Ask the worker to quit and reap it (terminate, then kill, if it does not)."""
        with contextlib.suppress(OSError):  # a worker that has already gone has closed its end
            self._send({"cmd": "quit"})
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()


def descendants(root: int | None = None) -> list[int]:
    """Live (not zombie) descendant processes of ``root`` (this process by default)."""
    root = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = _stat_fields(int(entry.name))
        except (OSError, ValueError):
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _name(pid: int) -> str:
    try:
        return f"{Path(f'/proc/{pid}/comm').read_text().strip()}({pid})"
    except OSError:
        return f"?({pid})"


def reap_descendants(timeout: float = SETTLE_TIMEOUT_S) -> list[str]:
    """Wait for this process's descendants to exit; terminate the ones still running after ``timeout``.

    Returns the names of those that had to be terminated (none, when every leg cleaned up after itself).
    """
    deadline = time.monotonic() + timeout
    while descendants() and time.monotonic() < deadline:
        time.sleep(0.1)
    stragglers = descendants()
    for pid in stragglers:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    names = [_name(p) for p in stragglers]
    end = time.monotonic() + 5
    while descendants() and time.monotonic() < end:
        time.sleep(0.1)
    return names


def settle(before: str) -> dict[str, Any]:
    """Before the leg ``before``: no child process of the bench left running, this process and the machine quiet."""
    terminated = reap_descendants()
    waited, last = wait_quiet([os.getpid()])
    return {
        "before": before,
        "terminated": terminated,
        "waited_s": round(waited, 2),
        "busy": last.busy,
        "bench_cores": round(last.bench_cores, 3),
        "machine_cores": round(last.machine_cores, 3),
    }


def baseline_verdict(fresh_tok_s: float, bench_tok_s: float, factor: float = BASELINE_FACTOR) -> dict[str, Any]:
    """Is the bench's plain llama-cpp-python as fast as the same run in a fresh process (within ``factor``)?"""
    out: dict[str, Any] = {
        "fresh_plain_tok_s": round(fresh_tok_s, 2),
        "bench_plain_tok_s": round(bench_tok_s, 2),
        "factor": factor,
    }
    if not (fresh_tok_s > 0 and bench_tok_s > 0):  # also catches NaN
        return {**out, "ok": False, "reason": "no plain llama-cpp-python throughput to compare (a run failed?)"}
    share = bench_tok_s / fresh_tok_s
    out["share"] = round(share, 3)
    if share < factor:
        reason = (
            f"plain llama-cpp-python made {bench_tok_s:.1f} tok/s inside the bench but {fresh_tok_s:.1f} tok/s in a "
            f"fresh process ({share:.2f}x < {factor}x): something slowed the bench's baseline, so its ratios "
            "would not mean much; rerun on a quiet machine"
        )
        return {**out, "ok": False, "reason": reason}
    return {**out, "ok": True}


def apply_baseline(result: dict[str, Any], verdict: dict[str, Any]) -> dict[str, Any]:
    """``result`` with ``"baseline": verdict`` and, when the verdict is not ok, the ratios set to None."""
    out = {**result, "baseline": verdict}
    if not verdict["ok"]:
        out.update({key: None for key in RATIO_KEYS})
    return out
