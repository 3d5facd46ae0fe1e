"""Pause points inside a torch model's forward and backward passes, for a ``BackgroundJob``.

A training step or a batched generation of the fine-tuning demo is one long job on the model-compute thread
(seconds). With ``yielding_layers(model, job)``, every decoder block calls ``job.checkpoint()`` before it runs
and again when the gradient of its output is computed, so a chat that starts meanwhile waits at most one
block's computation (milliseconds), and a cancelled job stops there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from .priority import BackgroundJob
from .torch_layers import decoder_layers


@contextmanager
def yielding_layers(model: nn.Module, job: BackgroundJob, n_layers: int | None = None) -> Iterator[None]:
    """Checkpoints of ``job`` at every decoder block of ``model`` inside the block; removed afterwards."""

    def before(_module: nn.Module, _args: Any) -> None:
        job.checkpoint()

    def on_gradient(grad: torch.Tensor) -> torch.Tensor:
        job.checkpoint()
        return grad

    def after(_module: nn.Module, _args: Any, output: Any) -> None:
        hidden = output[0] if isinstance(output, tuple) else output
        if isinstance(hidden, torch.Tensor) and hidden.requires_grad:
            hidden.register_hook(on_gradient)

    handles = []
    try:
        for block in decoder_layers(model, n_layers):
            handles.append(block.register_forward_pre_hook(before))
            handles.append(block.register_forward_hook(after))
        yield
    finally:
        for handle in handles:
            handle.remove()


__all__ = ["yielding_layers"]
