"""Read a reply's activations once, at every layer a probe might use: the per-reply summary probes are fit on.

For a reply (prompt tokens + reply tokens), the rows that matter are the positions whose logits chose the reply
tokens: the last prompt position and the reply positions but the last (``reply_rows``). A reading keeps, per
layer, the mean of those rows ("response mean", what the live panel averages), the last prompt row (the
prediction before any token) and, when asked, the rows themselves (for calibration).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ..backends.base import Backend


@dataclass(frozen=True)
class Readings:
    """Many replies read at ``layers``: ``mean``/``last`` are (n_replies, n_layers, d); ``rows`` per reply."""

    layers: tuple[int, ...]
    mean: np.ndarray
    last: np.ndarray
    rows: tuple[np.ndarray, ...] = ()  # per reply: (n_layers, n_rows, d), when kept

    def at(self, layer: int) -> int:
        return self.layers.index(layer)

    def __len__(self) -> int:
        return int(self.mean.shape[0])


def read_replies(
    backend: Backend,
    items: Sequence[tuple[list[int], list[int]]],
    layers: Sequence[int],
    *,
    keep_rows: bool = False,
    desc: str = "read replies",
    progress: bool = True,
) -> Readings:
    """Teacher-forced readings of ``(prompt, reply)`` token lists (an empty reply reads the prompt's last row)."""
    layers = tuple(layers)
    means, lasts, kept = [], [], []
    for prompt, reply in tqdm(items, desc=desc, disable=not progress, file=sys.stderr):
        start = len(prompt) - 1
        hs = backend.hidden_states(list(prompt) + list(reply), list(layers), start=start)
        n = max(1, len(reply))
        block = np.stack([hs[l][:n] for l in layers]).astype(np.float32)  # (n_layers, n, d)
        means.append(block.mean(axis=1))
        lasts.append(block[:, 0])
        if keep_rows:
            kept.append(block)
    d = backend.d_model
    empty = np.zeros((0, len(layers), d), np.float32)
    return Readings(
        layers,
        np.stack(means) if means else empty,
        np.stack(lasts) if lasts else empty,
        tuple(kept),
    )


def merge(readings: Sequence[Readings]) -> Readings:
    """One Readings from several read at the same layers."""
    layers = readings[0].layers
    if any(r.layers != layers for r in readings):
        raise ValueError("cannot merge readings taken at different layers")
    return Readings(
        layers,
        np.concatenate([r.mean for r in readings]),
        np.concatenate([r.last for r in readings]),
        tuple(row for r in readings for row in r.rows),
    )
