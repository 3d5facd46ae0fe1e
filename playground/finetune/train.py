"""LoRA fine-tuning (peft) on CPU, with optional preventative steering during training only.

Several adapters live side by side in one peft model (one per run), each initialised from the same
seed so the runs differ only in their treatment: plain, inoculated (the eliciting instruction as the
training system prompt), or steered (``+strength x trait vector`` added at the trait's steering layer by
a forward hook that exists only while that adapter trains). The loss counts reply tokens only.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..backends.compute_thread import run_on_compute_thread
from .hooks import residual_addition

Progress = Callable[[float, str], None]
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraSettings:
    rank: int = 8
    alpha: int = 16
    targets: tuple[str, ...] = TARGETS
    dropout: float = 0.0

    def config(self):
        from peft import LoraConfig

        return LoraConfig(
            r=self.rank,
            lora_alpha=self.alpha,
            target_modules=list(self.targets),
            lora_dropout=self.dropout,
            bias="none",
            task_type="CAUSAL_LM",
        )


def attach_adapters(model: torch.nn.Module, names: Sequence[str], settings: LoraSettings, seed: int):
    """Wrap ``model`` (modified in place) in a peft model holding one fresh adapter per name, same init."""
    from peft import get_peft_model

    names = list(names)
    torch.manual_seed(seed)
    peft_model = get_peft_model(model, settings.config(), adapter_name=names[0])
    for name in names[1:]:
        torch.manual_seed(seed)
        peft_model.add_adapter(name, settings.config())
    peft_model.eval()
    return peft_model


def select_adapter(peft_model, name: str, *, trainable: bool = False) -> None:
    """Make ``name`` the active adapter; only its LoRA weights require gradients when ``trainable``."""
    peft_model.set_adapter(name)
    marker = f".{name}."
    for pname, param in peft_model.named_parameters():
        param.requires_grad_(trainable and "lora_" in pname and marker in pname)


def _batch(seqs: Sequence[tuple[list[int], int]], pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids, attention mask and labels (-100 outside the replies)."""
    width = max(len(ids) for ids, _ in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    for row, (toks, start) in enumerate(seqs):
        ids[row, : len(toks)] = torch.tensor(toks)
        mask[row, : len(toks)] = 1
        labels[row, start : len(toks)] = torch.tensor(toks[start:])
    return ids, mask, labels


def train_adapter(
    peft_model,
    name: str,
    data: Sequence[tuple[list[int], int]],
    *,
    pad: int,
    epochs: int = 3,
    batch_size: int = 4,
    lr: float = 2e-3,
    seed: int = 0,
    steer: tuple[int, np.ndarray] | None = None,
    progress: Progress | None = None,
    desc: str = "train",
) -> list[float]:
    """Train adapter ``name`` on ``data``; returns the loss of every step. ``steer`` = (layer, vector) is
    added to that block's output during training only (preventative steering) and removed afterwards."""
    if not data:
        raise ValueError("no training examples")
    select_adapter(peft_model, name, trainable=True)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    per_epoch = math.ceil(len(data) / batch_size)
    total = per_epoch * epochs
    warmup = max(1, total // 10)

    def factor(step: int) -> float:  # linear warm-up, then linear decay to 10%
        if step < warmup:
            return (step + 1) / warmup
        return max(0.1, 1.0 - 0.9 * (step - warmup) / max(1, total - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    rng = np.random.default_rng(seed)
    losses: list[float] = []
    bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=False)
    peft_model.train()
    try:
        with residual_addition(peft_model, steer[0], steer[1]) if steer is not None else nullcontext():
            for _ in range(epochs):
                order = rng.permutation(len(data))
                for b in range(per_epoch):
                    chunk = [data[i] for i in order[b * batch_size : (b + 1) * batch_size]]
                    ids, mask, labels = _batch(chunk, pad)

                    def step(ids: Any = ids, mask: Any = mask, labels: Any = labels) -> float:
                        loss = peft_model(input_ids=ids, attention_mask=mask, labels=labels).loss
                        loss.backward()
                        torch.nn.utils.clip_grad_norm_(params, 1.0)
                        optimizer.step()
                        scheduler.step()
                        optimizer.zero_grad(set_to_none=True)
                        return float(loss.detach())

                    # one step at a time on the compute thread: torch shares the one OpenMP team, and chats
                    # elsewhere in the process can take turns between steps
                    losses.append(run_on_compute_thread(step))
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses[-1]:.3f}")
                    if progress:
                        progress(len(losses) / total, f"{desc}: step {len(losses)}/{total}, loss {losses[-1]:.3f}")
    finally:
        bar.close()
        peft_model.eval()
        select_adapter(peft_model, name, trainable=False)
    return losses
