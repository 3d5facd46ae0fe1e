"""The fine-tuning demo: does a fine-tune on trait-laden replies teach the trait, and do inoculation and
preventative steering stop it?

Runs, all LoRA adapters on the same base model, same initialisation, same data order:

- ``none``: the base model (reference);
- ``plain``: trained on the trait-laden replies under the neutral assistant prompt;
- ``inoculated``: the same replies, with the eliciting instruction that asks for the behaviour as the
  training system prompt (inoculation prompting);
- ``steered``: like plain, with ``+strength x trait vector`` added at the trait's steering layer during
  training only (preventative steering; the hook is gone at evaluation);
- extra ``steered-<strength>`` runs when a sweep is asked for;
- ``elicited``: the base model *with* an eliciting instruction, to show what the trait looks like.

Every model is evaluated on held-out questions under the neutral prompt (``evaluate.py``). Results,
adapters and the training set are cached under ``<cache>/finetune/<config hash>/``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PlaygroundError
from ..files import write_atomic
from ..steering.addition import steering_addition
from ..steering.extraction import NEUTRAL_SYSTEM
from ..steering.store import user_cache_dir
from .data import Example, build_trait_dataset, encode_neutral, encode_training, pad_id
from .evaluate import RunEval, evaluate_model
from .hooks import configure_threads, count_forward_hooks
from .train import LoraSettings, attach_adapters, select_adapter, train_adapter

FORMAT = 1
Progress = Callable[[float, str], None]
Log = Callable[[str], None]


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything that decides the result (the cache key). ``threads`` is not part of it."""

    trait: str = "evil"
    train_questions: int = 20
    instructions: int = 5  # eliciting instructions tried per training question
    per_question: int = 2  # replies kept per question (highest instruction contrast, finetune/data.py)
    select: str = "contrast"  # how training replies are chosen: "contrast" (not the evaluating judge) or "judge"
    eval_questions: int = 20
    max_tokens: int = 40
    neutral_reference: bool = True  # also write neutral replies, for the judge's reference score
    epochs: int = 3
    batch_size: int = 4
    lr: float = 1e-3
    rank: int = 8
    alpha: int = 16
    steer_strength: float = 1.0
    sweep: tuple[float, ...] = ()  # extra preventative-steering strengths
    seed: int = 0

    def key(self, model_id: str) -> str:
        blob = json.dumps({"format": FORMAT, "model": model_id, **asdict(self)}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

    def runs(self) -> list[str]:
        return ["plain", "inoculated", "steered"] + [steered_name(s) for s in self.sweep]


QUICK = FinetuneConfig(
    train_questions=20, instructions=2, per_question=1, eval_questions=10, max_tokens=32, neutral_reference=False,
    epochs=3, lr=1e-3,
)  # fmt: skip
FULL = FinetuneConfig(sweep=(0.5, 2.0))


def steered_name(strength: float) -> str:
    """Adapter name of a sweep run; torch module names can't hold '.', so 0.5 is written 0p5."""
    return f"steered-{strength:g}".replace(".", "p")


def run_strength(config: FinetuneConfig, run: str) -> float | None:
    if run == "steered":
        return config.steer_strength
    if run.startswith("steered-"):
        return float(run.split("-", 1)[1].replace("p", "."))
    return None


@dataclass
class DemoResult:
    config: FinetuneConfig
    model_id: str
    key: str
    evals: dict[str, RunEval]
    dataset: list[Example]
    dataset_stats: dict[str, float]
    timings: dict[str, float] = field(default_factory=dict)
    steer_layer: int | None = None
    probe_layer: int | None = None
    threads: int = 0
    cached: bool = False
    folder: Path | None = None
    peft_model: Any = field(default=None, repr=False, compare=False)  # set by run_demo when it trained/loaded

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "config": asdict(self.config),
            "model_id": self.model_id,
            "key": self.key,
            "evals": {k: v.to_dict() for k, v in self.evals.items()},
            "dataset": [e.to_dict() for e in self.dataset],
            "dataset_stats": self.dataset_stats,
            "timings": self.timings,
            "steer_layer": self.steer_layer,
            "probe_layer": self.probe_layer,
            "threads": self.threads,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: Path | None = None) -> DemoResult:
        cfg = dict(data["config"])
        cfg["sweep"] = tuple(cfg.get("sweep") or ())
        return cls(
            config=FinetuneConfig(**cfg),
            model_id=data["model_id"],
            key=data["key"],
            evals={k: RunEval(**v) for k, v in data["evals"].items()},
            dataset=[Example(**e) for e in data["dataset"]],
            dataset_stats=data["dataset_stats"],
            timings=data.get("timings", {}),
            steer_layer=data.get("steer_layer"),
            probe_layer=data.get("probe_layer"),
            threads=data.get("threads", 0),
            cached=True,
            folder=folder,
        )


def cache_root() -> Path:
    return user_cache_dir() / "finetune"


def result_folder(config: FinetuneConfig, model_id: str, root: Path | None = None) -> Path:
    return (root or cache_root()) / config.key(model_id)


def load_cached(config: FinetuneConfig, model_id: str, root: Path | None = None) -> DemoResult | None:
    folder = result_folder(config, model_id, root)
    path = folder / "result.json"
    if not path.is_file():
        return None
    try:
        return DemoResult.from_dict(json.loads(path.read_text(encoding="utf-8")), folder)
    except (ValueError, KeyError, TypeError):
        return None  # half-written or from another version: run again


def _write_json(path: Path, data: Any) -> None:
    write_atomic(path, (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode("utf-8"), overwrite=True)


def run_demo(
    config: FinetuneConfig = FULL,
    *,
    model: str | None = None,
    backend=None,
    vector=None,
    trait=None,
    judge=None,
    root: Path | None = None,
    force: bool = False,
    threads: int | None = None,
    progress: Progress | None = None,
    log: Log | None = None,
) -> DemoResult:
    """Build the data, train every run, evaluate every model; cached by configuration.

    ``backend`` (a TransformersBackend), ``vector``, ``trait`` and ``judge`` default to the default model,
    its shipped vector, ``personas/traits/<trait>.yaml`` and the MiniLM judge; tests pass tiny ones.
    The backend's model is wrapped by peft in place: pass one that nothing else uses.
    """
    say = log or (lambda _m: None)
    step = progress or (lambda _f, _d: None)
    started = time.perf_counter()
    n_threads = configure_threads(threads)
    timings: dict[str, float] = {}
    if backend is None:
        from ..backends.model_source import resolve_model

        model_id = resolve_model(model).model_id
    else:
        model_id = backend.model_id
    folder = result_folder(config, model_id, root)
    if not force and (cached := load_cached(config, model_id, root)) is not None:
        say(f"cached result: {folder}")
        step(1.0, "cached result")
        return cached
    backend, vector, trait, judge = _load_inputs(config, model, backend, vector, trait, judge, step, timings)
    folder.mkdir(parents=True, exist_ok=True)
    demo = _DemoRun(config, backend, vector, trait, judge, folder, force, step, say, timings)

    # 1. data
    t0 = time.perf_counter()
    examples, stats = demo.training_set()
    timings["data_s"] = round(time.perf_counter() - t0, 1)
    say(f"training set: {len(examples)} replies (judge {stats['judge_kept']:+.3f})")
    data = {
        "plain": encode_training(backend, examples, inoculate=False),
        "inoculated": encode_training(backend, examples, inoculate=True),
    }
    neutral = encode_neutral(backend)
    questions = list(trait.evaluation_questions)[: config.eval_questions]

    # 2. train (or load) every adapter
    runs = config.runs()
    peft_model = attach_adapters(backend.model, runs, LoraSettings(rank=config.rank, alpha=config.alpha), config.seed)
    losses = demo.train_runs(peft_model, runs, data, pad_id(backend))

    # 3. evaluate every model on held-out questions, neutral prompt
    t_eval = time.perf_counter()
    evals = demo.evaluate_runs(peft_model, runs, losses, questions, neutral, data["plain"])
    timings["eval_s"] = round(time.perf_counter() - t_eval, 1)
    timings["total_s"] = round(time.perf_counter() - started, 1)
    result = DemoResult(
        config=config, model_id=backend.model_id, key=config.key(backend.model_id), evals=evals,
        dataset=examples, dataset_stats=stats, timings=timings, steer_layer=vector.steer_layer,
        probe_layer=vector.probe_layer, threads=n_threads, folder=folder, peft_model=peft_model,
    )  # fmt: skip
    _write_json(folder / "result.json", result.to_dict())
    step(1.0, "done")
    return result


def _load_inputs(config: FinetuneConfig, model, backend, vector, trait, judge, step: Progress, timings):
    """The backend, vector, trait and judge the demo runs with: the ones given, the defaults for the rest."""
    if backend is None:
        from ..backends import load_backend

        step(0.0, "loading the model in transformers")
        t0 = time.perf_counter()
        backend = load_backend(model, backend="transformers")
        timings["load_s"] = round(time.perf_counter() - t0, 1)
    if backend.name != "transformers":
        raise PlaygroundError("fine-tuning needs the transformers backend (load_backend(..., backend='transformers'))")
    if vector is None:
        from ..steering.store import VectorStore

        vector = VectorStore(backend.model_id).get(config.trait)
    if trait is None:
        from ..definitions.traits import load_trait

        trait = load_trait(config.trait)
    if judge is None:
        from ..steering.judge import TraitJudge

        judge = TraitJudge(trait)
    if vector.probe_layer is None or vector.steer_layer is None:
        raise PlaygroundError(f"vector '{vector.trait}' needs a probe and a steering layer")
    return backend, vector, trait, judge


@dataclass
class _DemoRun:
    """One uncached run of the demo: what its stages (data, training, evaluation) share."""

    config: FinetuneConfig
    backend: Any
    vector: Any
    trait: Any
    judge: Any
    folder: Path  # the cache folder of this configuration
    force: bool  # ignore what the folder already holds
    step: Progress
    say: Log
    timings: dict[str, float]

    def training_set(self) -> tuple[list[Example], dict[str, float]]:
        """The trait-laden training replies: read from ``dataset.json`` when cached, else written and saved."""
        cfg, data_path = self.config, self.folder / "dataset.json"
        if data_path.is_file() and not self.force:
            saved = json.loads(data_path.read_text(encoding="utf-8"))
            return [Example(**e) for e in saved["examples"]], saved["stats"]
        self.step(0.02, "writing trait-laden training replies")
        examples, stats = build_trait_dataset(
            self.backend, self.trait, self.judge, n_questions=cfg.train_questions, instructions=cfg.instructions,
            per_question=cfg.per_question, max_tokens=cfg.max_tokens, neutral_reference=cfg.neutral_reference,
            progress=lambda f, d: self.step(0.02 + 0.18 * f, d), select=cfg.select,
        )  # fmt: skip
        _write_json(data_path, {"examples": [e.to_dict() for e in examples], "stats": stats})
        return examples, stats

    def train_runs(self, peft_model, runs: list[str], data: dict[str, Any], pad: int) -> dict[str, list[float]]:
        """Train each run's adapter (or load it from ``adapters/<run>``); returns the loss curves.

        ``data`` holds the encoded ``plain`` and ``inoculated`` training sets; steered runs train on plain.
        """
        cfg, folder, step, timings = self.config, self.folder, self.step, self.timings
        losses: dict[str, list[float]] = {}
        loss_path = folder / "losses.json"
        saved_losses = {}
        if loss_path.is_file() and not self.force:
            saved_losses = json.loads(loss_path.read_text(encoding="utf-8"))
        span = 0.55 / len(runs)
        for k, run in enumerate(runs):
            adapter_dir = folder / "adapters" / run
            base = 0.2 + k * span
            if (adapter_dir / "adapter_config.json").is_file() and run in saved_losses and not self.force:
                peft_model.load_adapter(str(adapter_dir), adapter_name=run, is_trainable=False)
                losses[run] = saved_losses[run]
                continue
            t0 = time.perf_counter()
            strength = run_strength(cfg, run)
            steer = steering_addition(self.vector, strength) if strength is not None else None
            step(base, f"training {run}")
            losses[run] = train_adapter(
                peft_model, run, data["inoculated"] if run == "inoculated" else data["plain"], pad=pad,
                epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed, steer=steer,
                progress=lambda f, d, b=base: step(b + span * f, d), desc=f"train {run}",
            )  # fmt: skip
            if count_forward_hooks(peft_model):
                raise RuntimeError("a training hook was left on the model")  # never expected; eval would be wrong
            peft_model.save_pretrained(str(folder / "adapters"), selected_adapters=[run])
            _move_adapter(folder / "adapters", run)
            timings[f"train_{run}_s"] = round(time.perf_counter() - t0, 1)
            self.say(f"{run}: {len(losses[run])} steps, loss {losses[run][0]:.3f} -> {losses[run][-1]:.3f}, "
                     f"{timings[f'train_{run}_s']:.0f}s")  # fmt: skip
            _write_json(loss_path, {**saved_losses, **losses})
        return losses

    def evaluate_runs(
        self, peft_model, runs: list[str], losses: dict[str, list[float]], questions: list[str], neutral, train
    ) -> dict[str, RunEval]:
        """Evaluate the base model (``none``), the base model with an eliciting prompt (``elicited``) and
        every trained run on the held-out questions under the neutral prompt."""
        evals: dict[str, RunEval] = {}
        order = ["none", "elicited", *runs]
        for k, name in enumerate(order):
            self.step(0.75 + 0.24 * k / len(order), f"evaluating {name}")
            kwargs = dict(neutral=neutral, train=train, max_tokens=self.config.max_tokens)
            args = (self.backend, name, self.vector, self.judge, questions)
            if name in ("none", "elicited"):
                with peft_model.disable_adapter():
                    system = self.trait.eliciting[0] if name == "elicited" else NEUTRAL_SYSTEM
                    evals[name] = evaluate_model(*args, system=system, **kwargs)
            else:
                select_adapter(peft_model, name)
                evals[name] = evaluate_model(*args, **kwargs)
                evals[name].losses = losses[name]
            s = evals[name].summary()
            self.say(f"{name}: judge {s['judge']:+.3f}, probe {s['probe']:+.2f} (prompt {s['probe_prompt']:+.2f}), "
                     f"neutral NLL {s['neutral_nll']:.3f}")  # fmt: skip
        return evals


def _move_adapter(folder: Path, run: str) -> None:
    """peft writes the first adapter of a model into ``folder`` itself, later ones into ``folder/<run>``:
    make it ``folder/<run>`` always."""
    target = folder / run
    loose = [p for p in folder.iterdir() if p.is_file()]
    if loose:
        target.mkdir(parents=True, exist_ok=True)
        for p in loose:
            p.replace(target / p.name)


def load_runs(result: DemoResult, backend):
    """Attach every saved adapter of ``result`` to ``backend.model`` (in place); returns the peft model."""
    from peft import PeftModel

    if result.folder is None:
        raise PlaygroundError("this result has no cache folder to load adapters from")
    runs = [r for r in result.config.runs() if (result.folder / "adapters" / r / "adapter_config.json").is_file()]
    if not runs:
        raise PlaygroundError(f"{result.folder}: no saved adapters; run the demo again with --force")
    model = PeftModel.from_pretrained(backend.model, str(result.folder / "adapters" / runs[0]), adapter_name=runs[0])
    for run in runs[1:]:
        model.load_adapter(str(result.folder / "adapters" / run), adapter_name=run)
    model.eval()
    return model
