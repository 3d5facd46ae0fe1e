"""What the playground and its vLLM worker say to each other: plain dicts of builtins over a
``multiprocessing.connection`` socket (the two sides run different Python environments, so no numpy objects
cross: arrays travel as float32 bytes with their row count).

Playground -> worker: ``submit`` (one request: prompt tokens, sampling, steering, layers to capture),
``intervene`` (a cap or counter-steer that acts from the request's next forward pass on), ``abort``, ``stop``.
Worker -> playground: ``ready`` (once), ``tokens`` (a request's new tokens with the rows that chose them),
``rows`` (a teacher-forced request's every prompt row and log-probabilities), ``done``, ``error``.
"""

from __future__ import annotations

from typing import Any

AUTH_ENV = "PLAYGROUND_VLLM_AUTH"  # the socket's shared secret, given to the worker by environment


def pack(rows: Any) -> dict[str, Any]:
    """A (n, d) float32 array (numpy or anything with ``tobytes``/``shape``) as a builtin dict."""
    return {"n": int(rows.shape[0]), "d": int(rows.shape[1]), "data": rows.tobytes()}


def unpack(packed: dict[str, Any]) -> Any:
    """The (n, d) float32 numpy array of :func:`pack`'s output."""
    import numpy as np

    return np.frombuffer(packed["data"], dtype=np.float32).reshape(packed["n"], packed["d"]).copy()
