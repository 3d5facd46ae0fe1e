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

from ..backends.compute_thread import run_on_compute_thread
from ..errors import ModelError
from ..steering.vectors import TraitVector

_MARK = "_playground_residual_addition"
_LAYER_PATHS = ("model.layers", "model.model.layers", "base_model.model.model.layers", "transformer.h")


def configure_threads(threads: int | None = None) -> int:
    """Set torch's CPU threads: ``threads``, else $PLAYGROUND_THREADS, else every core. Returns the count."""
    n = threads or int(os.environ.get("PLAYGROUND_THREADS", 0) or 0) or (os.cpu_count() or 1)
    torch.set_num_threads(max(1, int(n)))
    run_on_compute_thread(lambda: torch.set_num_threads(max(1, int(n))))  # where torch's work runs
    return torch.get_num_threads()


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The list of decoder blocks of a causal LM, also through peft wrappers."""
    n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for path in _LAYER_PATHS:
        obj: Any = model
        for attr in path.split("."):
            obj = getattr(obj, attr, None)
        if isinstance(obj, nn.ModuleList) and (n is None or len(obj) == n):
            return obj
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and n is not None and len(module) == n:
            return module
    raise ModelError(f"{type(model).__name__}: could not find its decoder blocks to hook")


def steering_addition(vec: TraitVector, strength: float, layer: int | None = None) -> tuple[int, np.ndarray]:
    """(layer, vector) that steering ``strength`` of ``vec`` adds, on the playground's strength scale."""
    layer = vec.steer_layer if layer is None else layer
    if layer is None:
        raise ModelError(f"vector '{vec.trait}' has no steering layer")
    scale = vec.steer_scale.get(layer, vec.norm(layer))
    return layer, (float(strength) * scale * vec.unit(layer)).astype(np.float32)


def count_forward_hooks(model: nn.Module) -> int:
    """Steering hooks of this module still registered on the decoder blocks (training must leave none).

    Only our own hooks count: transformers registers hooks of its own to record outputs."""
    return sum(1 for block in decoder_layers(model) for h in block._forward_hooks.values() if getattr(h, _MARK, False))


@contextmanager
def residual_addition(model: nn.Module, layer: int, vector: np.ndarray | torch.Tensor) -> Iterator[None]:
    """Add ``vector`` to the output of block ``layer`` (every position) for the duration of the block."""
    blocks = decoder_layers(model)
    if not 0 <= layer < len(blocks):
        raise ModelError(f"layer {layer} out of range: this model has blocks 0..{len(blocks) - 1}")
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
