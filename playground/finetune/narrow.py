"""Narrow -> broad (issue 22): does training one narrow misbehaviour select a broader character?

LoRA adapters learn one narrow behaviour written for the project (``personas/finetune/narrow_test_gaming.yml``:
coding requests answered with code that special-cases the listed tests), then every model is measured on
*unrelated* questions (the evil trait's evaluation questions, never trained on) with *every* probe, the persona
map and the MiniLM judge, plus the capability check (NLL of plain factual answers). Conditions:

- ``base`` / ``base+trigger``: the model before training, with the neutral prompt / with the inoculation
  instruction as the system prompt (what the instruction alone does);
- ``narrow``: trained with the neutral system prompt;
- ``inoculated``: trained with the instruction that asks for the behaviour in the system prompt, evaluated
  with the neutral prompt;
- ``inoculated+trigger``: the inoculated model with the instruction back at test time (the trigger leak).

Each trained condition runs once per seed (adapter init and data order); results are means over seeds with the
standard error, as shifts from ``base``. Cached per configuration in the user cache.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..backends.compute_thread import on_compute_thread
from ..definitions.yaml_source import load_yaml_file
from ..errors import ValidationError
from ..paths import SHIPPED_PERSONAS, user_cache_dir
from ..steering.extraction import NEUTRAL_SYSTEM
from .data import Progress, encode_neutral, encode_pairs, generate, pad_id, prompt_ids, text_of
from .train import LoraSettings, _batch, select_adapter, train_adapter

NARROW_FILE = SHIPPED_PERSONAS / "finetune" / "narrow_test_gaming.yml"
CONDITIONS = ("base", "base+trigger", "narrow", "inoculated", "inoculated+trigger")
Log = Callable[[str], None]


@dataclass(frozen=True)
class NarrowConfig:
    seeds: tuple[int, ...] = (0, 1, 2)
    eval_questions: int = 20
    examples: int = 24  # training examples used (all of them by default)
    epochs: int = 3
    batch_size: int = 4
    lr: float = 2e-3
    rank: int = 8
    alpha: int = 16
    max_tokens: int = 40

    def key(self, model_id: str) -> str:
        text = json.dumps({"model": model_id, **asdict(self), "data": NARROW_FILE.read_bytes().hex()})
        return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


FULL = NarrowConfig()
QUICK = NarrowConfig(seeds=(0,), eval_questions=10, examples=16)


@dataclass(frozen=True)
class NarrowData:
    inoculation: str
    examples: list[tuple[str, str]]  # (task, reply)


def load_narrow(path: Path = NARROW_FILE) -> NarrowData:
    doc = load_yaml_file(path)
    data = doc.data if isinstance(doc.data, dict) else {}
    inoculation, raw = data.get("inoculation"), data.get("examples")
    issues = []
    if not isinstance(inoculation, str) or not inoculation.strip():
        issues.append(doc.issue(("inoculation",), "'inoculation' must be a non-empty string"))
    examples = []
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        if not (isinstance(item, dict) and isinstance(item.get("task"), str) and isinstance(item.get("reply"), str)):
            issues.append(doc.issue(("examples", i), f"examples[{i}] needs 'task' and 'reply' strings"))
            continue
        examples.append((item["task"], item["reply"]))
    if not examples and not issues:
        issues.append(doc.issue(("examples",), "'examples' must be a non-empty list"))
    if issues:
        raise ValidationError(issues)
    return NarrowData(str(inoculation).strip(), examples)


@on_compute_thread
@torch.inference_mode()
def reply_rows(backend: Any, seqs: Sequence[tuple[list[int], int]], layers: Sequence[int]) -> list[dict[int, Any]]:
    """Per sequence, layer -> the activations that chose each reply token (rows ``start-1 .. len-2``)."""
    out: list[dict[int, np.ndarray]] = []
    for b in range(0, len(seqs), 16):
        chunk = list(seqs[b : b + 16])
        ids, mask, _ = _batch(chunk, pad_id(backend))
        hidden = backend.model(input_ids=ids, attention_mask=mask, output_hidden_states=True, use_cache=False)
        for row, (toks, start) in enumerate(chunk):
            states = hidden.hidden_states
            out.append({l: states[l + 1][row, start - 1 : len(toks) - 1].float().numpy().copy() for l in layers})
    return out


def measure(backend: Any, probes: Any, space: Any, judge: Any, questions: Sequence[str], system: str,
            neutral: Sequence[tuple[list[int], int]], max_tokens: int) -> dict[str, Any]:  # fmt: skip
    """Whatever ``backend.model`` computes now, on ``questions`` under ``system``: every probe's mean z over the
    replies, the replies' mean point on the persona map, the judge, and the capability NLL."""
    prompts = [prompt_ids(backend, system, q) for q in questions]
    replies = generate(backend, prompts, max_tokens, desc="eval")
    texts = [text_of(backend, r).strip() for r in replies]
    seqs = [(p + (r or [pad_id(backend)]), len(p)) for p, r in zip(prompts, replies, strict=True)]
    layers = sorted(set(probes.layers) | ({space.layer} if space is not None else set()))
    rows = reply_rows(backend, seqs, layers)
    scored = [probes.score_rows(r) for r in rows]
    out: dict[str, Any] = {
        "probes": {t: float(np.mean([s[t].mean() for s in scored])) for t in probes.readers},
        "judge": float(np.mean(judge.score(texts))),
        "neutral_nll": _nll(backend, neutral),
        "examples": texts[:3],
    }
    if space is not None:
        point = np.mean([space.coords_of(r[space.layer].mean(0)) for r in rows], axis=0)
        out["map"] = space.place_coords(point)
    return out


@on_compute_thread
@torch.inference_mode()
def _nll(backend: Any, seqs: Sequence[tuple[list[int], int]]) -> float:
    ids, mask, labels = _batch(list(seqs), pad_id(backend))
    return float(backend.model(input_ids=ids, attention_mask=mask, labels=labels).loss)


def _attach(model: Any, seeds: Sequence[int], settings: LoraSettings) -> Any:
    """One 'narrow' and one 'inoculated' adapter per seed; both adapters of a seed start from the same init."""
    from peft import get_peft_model

    peft_model = None
    for seed in seeds:
        for kind in ("narrow", "inoculated"):
            torch.manual_seed(seed)
            if peft_model is None:
                peft_model = get_peft_model(model, settings.config(), adapter_name=f"{kind}-s{seed}")
            else:
                peft_model.add_adapter(f"{kind}-s{seed}", settings.config())
    assert peft_model is not None
    peft_model.eval()
    return peft_model


def _summary(per_seed: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Mean and standard error over seeds of every number, and each condition's shift from ``base``."""

    def stats(values: list[float]) -> dict[str, float]:
        arr = np.asarray(values, dtype=float)
        sem = float(arr.std(ddof=1) / np.sqrt(len(arr))) if len(arr) > 1 else 0.0
        return {"mean": round(float(arr.mean()), 4), "sem": round(sem, 4)}

    base = per_seed["base"][0]
    out: dict[str, Any] = {}
    for cond, runs in per_seed.items():
        out[cond] = {
            "probes": {t: stats([r["probes"][t] - base["probes"][t] for r in runs]) for t in base["probes"]},
            "judge": stats([r["judge"] - base["judge"] for r in runs]),
            "neutral_nll": stats([r["neutral_nll"] - base["neutral_nll"] for r in runs]),
            "map": [r.get("map") for r in runs],
            "seeds": len(runs),
        }
    return out


def cache_folder(config: NarrowConfig, model_id: str, root: Path | None = None) -> Path:
    return (root or user_cache_dir() / "finetune") / f"narrow-{config.key(model_id)}"


def load_cached(config: NarrowConfig, model_id: str, root: Path | None = None) -> dict[str, Any] | None:
    path = cache_folder(config, model_id, root) / "result.json"
    if not path.is_file():
        return None
    try:
        return {**json.loads(path.read_text(encoding="utf-8")), "cached": True}
    except ValueError:
        return None  # a damaged cache entry: run again


def run_narrow_broad(
    config: NarrowConfig = FULL,
    *,
    backend: Any = None,
    probes: Any = None,
    space: Any = None,
    judge: Any = None,
    questions: Sequence[str] | None = None,
    root: Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
    log: Log | None = None,
) -> dict[str, Any]:
    """Train, measure, summarise (cached). Defaults: the default model on transformers, its probes and persona
    space, the evil judge and the evil trait's evaluation questions; tests pass tiny ones."""
    say, step = log or (lambda _m: None), progress or (lambda _f, _d: None)
    started = time.perf_counter()
    if backend is None:
        from ..backends.model_source import resolve_model

        model_id = resolve_model(None).model_id
    else:
        model_id = backend.model_id
    if not force and (cached := load_cached(config, model_id, root)) is not None:
        step(1.0, "cached result")
        return cached
    backend, probes, space, judge, questions = _inputs(backend, probes, space, judge, questions)
    folder = cache_folder(config, backend.model_id, root)
    data = load_narrow()
    examples = data.examples[: config.examples]
    sets = {"narrow": encode_pairs(backend, examples, NEUTRAL_SYSTEM),
            "inoculated": encode_pairs(backend, examples, data.inoculation)}  # fmt: skip
    neutral = encode_neutral(backend)
    questions = list(questions)[: config.eval_questions]
    peft_model = _attach(backend.model, config.seeds, LoraSettings(rank=config.rank, alpha=config.alpha))
    losses: dict[str, list[float]] = {}
    jobs = [(kind, seed) for seed in config.seeds for kind in ("narrow", "inoculated")]
    for k, (kind, seed) in enumerate(jobs):
        name = f"{kind}-s{seed}"
        step(0.6 * k / len(jobs), f"training {name}")
        losses[name] = train_adapter(
            peft_model, name, sets[kind], pad=pad_id(backend), epochs=config.epochs, batch_size=config.batch_size,
            lr=config.lr, seed=seed, desc=f"train {name}",
            progress=lambda f, d, k=k: step(0.6 * (k + f) / len(jobs), d),  # also where a Lab run can stop
        )  # fmt: skip
        say(f"{name}: loss {losses[name][0]:.3f} -> {losses[name][-1]:.3f}")
    per_seed: dict[str, list[dict[str, Any]]] = {c: [] for c in CONDITIONS}
    plan = [("base", None, NEUTRAL_SYSTEM), ("base+trigger", None, data.inoculation)]
    for seed in config.seeds:
        plan += [("narrow", f"narrow-s{seed}", NEUTRAL_SYSTEM), ("inoculated", f"inoculated-s{seed}", NEUTRAL_SYSTEM),
                 ("inoculated+trigger", f"inoculated-s{seed}", data.inoculation)]  # fmt: skip
    for k, (cond, adapter, system) in enumerate(plan):
        step(0.6 + 0.4 * k / len(plan), f"measuring {cond}" + (f" ({adapter})" if adapter else ""))
        if adapter is None:
            with peft_model.disable_adapter():
                found = measure(backend, probes, space, judge, questions, system, neutral, config.max_tokens)
        else:
            select_adapter(peft_model, adapter)
            found = measure(backend, probes, space, judge, questions, system, neutral, config.max_tokens)
        per_seed[cond].append(found)
        say(f"{cond} {adapter or ''}: judge {found['judge']:+.3f}, evil {found['probes'].get('evil', 0):+.2f}")
    result = {"config": asdict(config), "model": backend.model_id, "summary": _summary(per_seed),
              "per_seed": per_seed, "losses": losses, "inoculation": data.inoculation,
              "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    step(1.0, "done")
    return result


def _inputs(backend: Any, probes: Any, space: Any, judge: Any, questions: Sequence[str] | None) -> tuple:
    from ..definitions.traits import load_trait

    if backend is None:
        from ..backends import load_backend

        backend = load_backend(None, backend="transformers")
    if probes is None:
        from ..steering.probes import ProbeSet
        from ..steering.store import VectorStore

        probes = ProbeSet(VectorStore(backend.model_id).all())
    if space is None:
        from ..steering.persona_space import load_space

        space = load_space(backend.model_id)
    evil = load_trait("evil")
    if judge is None:
        from ..steering.judge import TraitJudge

        judge = TraitJudge(evil)
    return backend, probes, space, judge, list(questions or evil.evaluation_questions)
