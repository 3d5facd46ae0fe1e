"""Fine-tuning demos on the default model: does training on trait-laden replies teach the trait, and do
inoculation prompting and preventative steering ("vaccine") stop it? LoRA (peft) through transformers
on CPU. ``python -m playground finetune-demo [--quick]``; see docs/FINETUNE.md.

- ``data``: the training set (the model's own replies under eliciting instructions, judge-filtered)
- ``hooks``: the preventative-steering forward hook (training only) and thread settings
- ``train``: LoRA adapters side by side, one per run
- ``evaluate``: probes on the fine-tuned model's activations, the judge, a capability check
- ``demo``: the runs, cached under ``~/.cache/persona-playground/finetune/<hash>``
- ``export``: merge an adapter into a Hugging Face model directory the playground can chat with
- ``report``: docs/FINETUNE.md
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FULL": "demo",
    "QUICK": "demo",
    "DemoResult": "demo",
    "FinetuneConfig": "demo",
    "load_cached": "demo",
    "result_folder": "demo",
    "run_demo": "demo",
    "copy_model_data": "export",
    "merge_adapter": "export",
    "configure_threads": "hooks",
    "count_forward_hooks": "hooks",
    "residual_addition": "hooks",
    "steering_addition": "hooks",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:  # lazy: `import playground.finetune.cli` must not import torch
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'playground.finetune' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
