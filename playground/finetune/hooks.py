"""Residual-stream hooks for training: preventative steering ("vaccine") as a scoped forward hook.

The hook adds a fixed vector to the output of one decoder block at every position. It exists only
inside ``with residual_addition(...)``: the ``finally`` removes it, so evaluation, export and chat
never see it. Layers follow the library convention (0-based block index, the output of block ``l``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from ..backends.base import check_layer
from ..backends.compute_thread import run_on_compute_thread
from ..backends.torch_layers import decoder_layers
from ..errors import ModelError
from ..steering.addition import steering_addition as steering_addition  # playground.finetune exports it

_MARK = "_playground_residual_addition"


def configure_threads(threads: int | None = None) -> int:
    """Set torch's CPU threads: ``threads``, else $PLAYGROUND_THREADS, else every core. Returns the count."""
    n = threads or int(os.environ.get("PLAYGROUND_THREADS", 0) or 0) or (os.cpu_count() or 1)
    torch.set_num_threads(max(1, int(n)))
    run_on_compute_thread(lambda: torch.set_num_threads(max(1, int(n))))  # where torch's work runs
    return torch.get_num_threads()


def count_forward_hooks(model: nn.Module) -> int:
    """Steering hooks of this module still registered on the decoder blocks (training must leave none).

    Only our own hooks count: transformers registers hooks of its own to record outputs."""
    return sum(1 for block in decoder_layers(model) for h in block._forward_hooks.values() if getattr(h, _MARK, False))


@contextmanager
def residual_addition(model: nn.Module, layer: int, vector: np.ndarray | torch.Tensor) -> Iterator[None]:
    """Add ``vector`` to the output of block ``layer`` (every position) for the duration of the block."""
    blocks = decoder_layers(model)
    check_layer(layer, len(blocks))
    add = torch.as_tensor(np.asarray(vector, dtype=np.float32))
    width = int(getattr(model.config, "hidden_size", add.numel()))
    if add.shape != (width,):
        raise ModelError(f"steering vector has shape {tuple(add.shape)}, the model's residual stream is ({width},)")

    def hook(module: nn.Module, args: Any, output: Any) -> Any:
        hidden = output[0] if isinstance(output, tuple) else output
        hidden = hidden + add.to(device=hidden.device, dtype=hidden.dtype)
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    setattr(hook, _MARK, True)
    handle = blocks[layer].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
