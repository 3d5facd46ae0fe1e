"""Evaluate a (fine-tuned) model: trait probes on its own activations, the judge, and a capability check.

For each held-out question (never in the training set) the model answers greedily under the neutral
assistant prompt, with no eliciting instruction. Then, teacher-forced on the same model:

- probe: the trait's shipped, calibrated vector at its probe layer, read at the positions that chose
  the reply tokens (mean over the reply) and at the last prompt token (the prediction before any
  token) — z-scores, 0 = the base model's typical assistant reply;
- judge: the independent MiniLM judge on the reply text;
- capability: mean per-token NLL of plain, factual answers (``data.NEUTRAL_TEXT``) under the model,
  and NLL of the training replies (how well the run learned its data).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..backends.compute_thread import on_compute_thread
from ..steering.extraction import NEUTRAL_SYSTEM
from ..steering.vectors import TraitVector
from .data import Progress, generate, pad_id, prompt_ids, text_of
from .train import _batch


@dataclass
class RunEval:
    """Everything measured for one model (one run)."""

    run: str
    replies: list[str]
    judge: list[float]
    probe_mean: list[float]
    probe_prompt: list[float]
    neutral_nll: float
    train_nll: float = float("nan")
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        def mean_sem(values: Sequence[float]) -> tuple[float, float]:
            arr = np.asarray(values, dtype=float)
            sem = float(arr.std(ddof=1) / np.sqrt(len(arr))) if len(arr) > 1 else 0.0
            return float(arr.mean()) if len(arr) else float("nan"), sem

        j, js = mean_sem(self.judge)
        p, ps = mean_sem(self.probe_mean)
        q, qs = mean_sem(self.probe_prompt)
        return {
            "judge": j, "judge_sem": js, "probe": p, "probe_sem": ps, "probe_prompt": q, "probe_prompt_sem": qs,
            "neutral_nll": self.neutral_nll, "train_nll": self.train_nll,
        }  # fmt: skip

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@on_compute_thread  # torch work shares the one OpenMP team (compute_thread.py)
@torch.inference_mode()
def teacher_forced(
    backend, seqs: Sequence[tuple[list[int], int]], layer: int | None = None, *, batch_size: int = 16
) -> tuple[list[float], list[np.ndarray]]:
    """Per sequence: mean NLL of tokens from ``start`` on, and (with ``layer``) the activations at the
    positions that chose them plus the last prompt token: rows ``start-1 .. len-2``, shape (n, d)."""
    model = backend.model
    pad = pad_id(backend)
    nll: list[float] = [0.0] * len(seqs)
    rows: list[np.ndarray] = [np.zeros((0, 0), dtype=np.float32)] * len(seqs)
    for b in range(0, len(seqs), batch_size):
        chunk = list(seqs[b : b + batch_size])
        ids, mask, labels = _batch(chunk, pad)
        out = model(input_ids=ids, attention_mask=mask, output_hidden_states=layer is not None, use_cache=False)
        logp = torch.log_softmax(out.logits.float(), dim=-1)
        for row, (toks, start) in enumerate(chunk):
            target = torch.tensor(toks[start:])
            picked = logp[row, start - 1 : len(toks) - 1].gather(1, target[:, None])[:, 0]
            nll[b + row] = float(-picked.mean()) if len(target) else float("nan")
            if layer is not None:
                hidden = out.hidden_states[layer + 1][row, start - 1 : len(toks) - 1]
                rows[b + row] = hidden.float().numpy().copy()
    return nll, rows


def probe_readouts(vec: TraitVector, rows: np.ndarray) -> tuple[float, float]:
    """(mean over reply positions, last prompt token) of the calibrated probe; ``rows[0]`` is the prompt's."""
    layer = vec.probe_layer
    assert layer is not None
    mean, std = vec.calibration[layer]
    z = (rows.astype(np.float64) @ vec.unit(layer).astype(np.float64) - mean) / std
    return float(z.mean()), float(z[0])


def evaluate_model(
    backend,
    name: str,
    vec: TraitVector,
    judge,
    questions: Sequence[str],
    *,
    neutral: Sequence[tuple[list[int], int]],
    train: Sequence[tuple[list[int], int]] = (),
    system: str = NEUTRAL_SYSTEM,
    max_tokens: int = 40,
    batch_size: int = 16,
    progress: Progress | None = None,
) -> RunEval:
    """Evaluate whatever ``backend.model`` currently computes (select the adapter before calling)."""
    started = time.perf_counter()
    prompts = [prompt_ids(backend, system, q) for q in questions]
    replies = generate(backend, prompts, max_tokens, batch_size=batch_size, progress=progress, desc=f"eval {name}")
    texts = [text_of(backend, r).strip() for r in replies]
    seqs = [(p + (r or [pad_id(backend)]), len(p)) for p, r in zip(prompts, replies, strict=True)]
    _, rows = teacher_forced(backend, seqs, vec.probe_layer, batch_size=batch_size)
    readouts = [probe_readouts(vec, r) for r in rows]
    neutral_nll, _ = teacher_forced(backend, neutral, batch_size=batch_size)
    train_nll = teacher_forced(backend, train, batch_size=batch_size)[0] if train else [float("nan")]
    return RunEval(
        run=name,
        replies=texts,
        judge=[float(x) for x in judge.score(texts)],
        probe_mean=[r[0] for r in readouts],
        probe_prompt=[r[1] for r in readouts],
        neutral_nll=float(np.mean(neutral_nll)),
        train_nll=float(np.nanmean(train_nll)),
        seconds=round(time.perf_counter() - started, 1),
    )


def answer_all(
    backend, peft_model, runs: Sequence[str], vec: TraitVector, message: str, *, max_tokens: int = 48
) -> list[dict[str, object]]:
    """One greedy reply to ``message`` (neutral prompt) from the base model and every run's adapter, with the
    trait probe (reply mean and last prompt token) read on that model's own activations."""
    prompt = prompt_ids(backend, NEUTRAL_SYSTEM, message)
    out: list[dict[str, object]] = []
    for run in ["none", *runs]:
        if run == "none":
            with peft_model.disable_adapter():
                reply = generate(backend, [prompt], max_tokens)[0]
                _, rows = teacher_forced(
                    backend, [(prompt + (reply or [pad_id(backend)]), len(prompt))], vec.probe_layer
                )
        else:
            peft_model.set_adapter(run)
            reply = generate(backend, [prompt], max_tokens)[0]
            _, rows = teacher_forced(backend, [(prompt + (reply or [pad_id(backend)]), len(prompt))], vec.probe_layer)
        mean, last = probe_readouts(vec, rows[0])
        out.append({"run": run, "reply": text_of(backend, reply).strip(), "probe": mean, "probe_prompt": last})
    return out
