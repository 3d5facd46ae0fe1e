"""Where a torch causal LM keeps its decoder blocks, so forward hooks can be put on block ``l``.

Architectures name the list differently (``model.layers`` for Llama/Qwen, ``transformer.h`` for GPT-2,
``gpt_neox.layers``, ...), and peft wrappers add ``base_model.model`` in front. Known paths are tried
first; an unknown architecture falls back to the first ``ModuleList`` with one entry per block. Both the
transformers backend (steering and capture) and the training hooks (preventative steering) use this.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import ModelError

_LAYER_PATHS = (
    "model.layers",
    "model.model.layers",
    "base_model.model.model.layers",
    "model.language_model.layers",
    "transformer.h",
    "gpt_neox.layers",
    "model.decoder.layers",
)


def decoder_layers(model: nn.Module, n_layers: int | None = None) -> nn.ModuleList:
    """The list of decoder blocks of a causal LM, also through peft wrappers.

    ``n_layers`` defaults to the model config's ``num_hidden_layers``; the list found must have that many
    entries (when the count is unknown, the first known path holding a ``ModuleList`` wins)."""
    n = n_layers if n_layers is not None else getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for path in _LAYER_PATHS:
        obj: Any = model
        for attr in path.split("."):
            obj = getattr(obj, attr, None)
        if isinstance(obj, nn.ModuleList) and (n is None or len(obj) == n):
            return obj
    for module in model.modules():  # unknown architecture: the first ModuleList with one entry per block
        if isinstance(module, nn.ModuleList) and n is not None and len(module) == n:
            return module
    blocks = "decoder blocks" if n is None else f"list of {n} decoder blocks"
    raise ModelError(f"{type(model).__name__}: could not find its {blocks} to hook")
