"""How many replies a model writes at once: one for backends that run one request at a time (llama.cpp,
transformers), up to the engine's batch for batching engines (vLLM: ``max_concurrent``).

Used like a lock (``with gate:``, ``acquire(blocking=False)``, ``release()``). The capacity is read from the
backend the first time the gate is taken, so creating a Playground still loads nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class GenerationGate:
    def __init__(self, capacity: Callable[[], int]) -> None:
        self._capacity = capacity
        self._make = threading.Lock()
        self._slots: threading.BoundedSemaphore | None = None

    @property
    def capacity(self) -> int:
        return self._gate()._initial_value  # type: ignore[attr-defined]

    def _gate(self) -> threading.BoundedSemaphore:
        if self._slots is None:
            with self._make:
                if self._slots is None:
                    self._slots = threading.BoundedSemaphore(max(1, int(self._capacity())))
        return self._slots

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        return self._gate().acquire(blocking, timeout)

    def release(self) -> None:
        self._gate().release()

    def locked(self) -> bool:
        """True while any reply holds the gate."""
        slots = self._slots
        return slots is not None and slots._value < slots._initial_value  # type: ignore[attr-defined]

    def __enter__(self) -> GenerationGate:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
