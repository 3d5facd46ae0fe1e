"""One thread for every model computation in the process (llama.cpp and torch alike).

Both llama.cpp's CPU backend and torch parallelise with OpenMP, and libgomp keeps a thread team for every
thread that starts parallel work. Parallel work started from several threads (the main thread, a UI's reply
threads, a benchmark's contenders) leaves several teams alive; once libgomp manages more threads than the
machine has CPUs, it stops spinning between parallel regions and parks its threads, and every graph
computation then pays for waking them. Measured on 2 cores: a 536-token prompt took 1.8 s when evaluated
from a second Python thread instead of 0.65 s; 64 tokens of decoding in a process that had also run torch
fell from ~120 to ~18 tokens/s. Running all of it on one long-lived thread keeps a single team.

``run_on_compute_thread(job)`` runs ``job()`` there and returns its result (or raises its exception) in the
calling thread; called from the compute thread itself it just runs the job. A hand-over costs a few tens of
microseconds, next to several milliseconds for one forward pass of the smallest model.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class ComputeThread:
    def __init__(self, name: str = "model-compute") -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], threading.Lock, list[Any]]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    @property
    def ident(self) -> int | None:
        return self._thread.ident

    def _serve(self) -> None:
        while True:
            self._run_one(self._jobs.get())

    @staticmethod
    def _run_one(item: tuple[Callable[[], Any], threading.Lock, list[Any]]) -> None:
        job, done, box = item
        try:
            box.append((True, job()))
        except BaseException as exc:  # handed back to the caller
            box.append((False, exc))
        done.release()

    def serve_while(self, condition: Callable[[], bool], poll: float) -> None:
        """From inside a job on this thread: run the jobs other threads hand over while ``condition()`` holds
        (a long torch job pausing so that a chat's model computations go first; ``priority.py``)."""
        if threading.get_ident() != self._thread.ident:
            raise RuntimeError("serve_while is for jobs running on the compute thread")
        while condition():
            try:
                item = self._jobs.get(timeout=poll)
            except queue.Empty:
                continue
            self._run_one(item)

    def run(self, job: Callable[[], T]) -> T:
        if threading.get_ident() == self._thread.ident:
            return job()
        done = threading.Lock()
        done.acquire()
        box: list[Any] = []
        self._jobs.put((job, done, box))
        done.acquire()
        ok, value = box[0]
        if not ok:
            raise value
        return value


_THREAD = ComputeThread()


def run_on_compute_thread(job: Callable[[], T]) -> T:
    """Run ``job()`` on the process's model-compute thread and return its result."""
    return _THREAD.run(job)


def compute_thread_ident() -> int | None:
    return _THREAD.ident


def on_the_compute_thread() -> bool:
    return threading.get_ident() == _THREAD.ident


def serve_compute_jobs_while(condition: Callable[[], bool], poll: float = 0.05) -> None:
    """See ``ComputeThread.serve_while``."""
    _THREAD.serve_while(condition, poll)


def on_compute_thread(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorator: every call of ``fn`` runs on the compute thread (put it outermost, above thread-local
    contexts such as ``torch.inference_mode()``, so that they are entered there)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        return run_on_compute_thread(lambda: fn(*args, **kwargs))

    return wrapper
