"""Fine-tuning demo on a tiny random llama: training, the preventative-steering hook, adapters, export, cache.

Nothing is downloaded: the tokenizer comes from the embedded GGUF, the model is random, the judge is a stub.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from playground.backends.model_source import ModelSource
from playground.backends.transformers import TransformersBackend
from playground.definitions.traits import load_trait
from playground.finetune import demo as ft_demo
from playground.finetune.data import encode_training, pad_id
from playground.finetune.demo import FinetuneConfig, load_runs, run_demo
from playground.finetune.export import copy_model_data, merge_adapter
from playground.finetune.hooks import configure_threads, count_forward_hooks, residual_addition
from playground.finetune.train import LoraSettings, attach_adapters, select_adapter, train_adapter
from playground.steering.addition import steering_addition
from playground.steering.store import VectorStore
from playground.steering.vectors import TraitVector

from .tiny_model import save_tiny_llama

pytestmark = pytest.mark.usefixtures("torch_on_one_thread")

TINY_CONFIG = FinetuneConfig(
    train_questions=2, instructions=2, per_question=1, eval_questions=2, max_tokens=4, epochs=2, batch_size=2,
    lr=5e-3, rank=2, alpha=4, steer_strength=1.0,
)  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread():
    configure_threads(1)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def tiny_backend(path: Path) -> TransformersBackend:
    return TransformersBackend(ModelSource("hf", path, "tiny-llama"))


def tiny_vector(d: int = 32, layers: int = 3) -> TraitVector:
    rng = np.random.default_rng(0)
    return TraitVector(
        directions={l: rng.normal(size=d).astype(np.float32) for l in range(layers)},
        trait="evil",
        model_id="tiny-llama",
        probe_layer=2,
        steer_layer=1,
        calibration={l: (0.0, 1.0) for l in range(layers)},
        steer_scale={l: 2.0 for l in range(layers)},
    )


class StubJudge:
    """Scores a text by its length: deterministic and offline."""

    def score(self, texts):
        return np.array([len(t) / 100.0 for t in texts], dtype=float)


def _block_output(backend: TransformersBackend, ids: torch.Tensor, layer: int) -> torch.Tensor:
    """The output of block ``layer`` as the next block sees it (a hook registered after any steering hook)."""
    from playground.backends.torch_layers import decoder_layers

    seen = {}
    handle = decoder_layers(backend.model)[layer].register_forward_hook(
        lambda m, a, out: seen.setdefault("h", (out[0] if isinstance(out, tuple) else out).detach().clone())
    )
    try:
        with torch.inference_mode():
            backend.model(input_ids=ids)
    finally:
        handle.remove()
    return seen["h"]


def test_residual_addition_adds_and_is_removed(tiny_dir: Path) -> None:
    backend = tiny_backend(tiny_dir)
    ids = torch.tensor([backend.tokenize("Hello there")])
    base = _block_output(backend, ids, 1)
    with torch.inference_mode():
        base_logits = backend.model(input_ids=ids).logits
    vec = np.ones(32, dtype=np.float32)
    with residual_addition(backend.model, 1, vec):
        assert count_forward_hooks(backend.model) == 1
        steered = _block_output(backend, ids, 1)
        with torch.inference_mode():
            assert not torch.allclose(backend.model(input_ids=ids).logits, base_logits)
    assert count_forward_hooks(backend.model) == 0
    assert torch.allclose(steered - base, torch.ones_like(base), atol=1e-5)
    with torch.inference_mode():
        assert torch.allclose(backend.model(input_ids=ids).logits, base_logits)
    with pytest.raises(RuntimeError), residual_addition(backend.model, 1, vec):
        raise RuntimeError("boom")
    assert count_forward_hooks(backend.model) == 0


def test_steering_addition_uses_strength_scale() -> None:
    vec = tiny_vector()
    layer, add = steering_addition(vec, 0.5)
    assert layer == 1
    assert np.allclose(add, 0.5 * 2.0 * vec.unit(1))


def test_training_with_preventative_steering_removes_its_hook(tiny_dir: Path) -> None:
    backend = tiny_backend(tiny_dir)
    trait = load_trait("evil")
    from playground.finetune.data import Example

    examples = [Example(q, "Do it now.", trait.eliciting[0]) for q in trait.extraction_questions[:2]]
    data = encode_training(backend, examples, inoculate=False)
    peft_model = attach_adapters(backend.model, ["plain", "steered"], LoraSettings(rank=2, alpha=4), seed=0)
    before = {n: p.detach().clone() for n, p in peft_model.named_parameters() if ".steered." in n}
    plain = train_adapter(peft_model, "plain", data, pad=pad_id(backend), epochs=1, batch_size=2, lr=1e-2)
    steered = train_adapter(
        peft_model, "steered", data, pad=pad_id(backend), epochs=1, batch_size=2, lr=1e-2,
        steer=steering_addition(tiny_vector(), 3.0),
    )  # fmt: skip
    assert count_forward_hooks(peft_model) == 0
    assert plain[0] != pytest.approx(steered[0])  # same init and data: only the hook differs
    after = dict(peft_model.named_parameters())
    assert any(not torch.equal(before[n], after[n]) for n in before)  # the steered adapter was trained
    assert not any(p.requires_grad for p in peft_model.parameters())


def test_demo_trains_evaluates_caches_and_exports(tiny_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PLAYGROUND_CACHE", str(tmp_path / "cache"))
    backend = tiny_backend(tiny_dir)
    vec, judge, trait = tiny_vector(), StubJudge(), load_trait("evil")
    result = run_demo(
        TINY_CONFIG, backend=backend, vector=vec, trait=trait, judge=judge, root=tmp_path / "ft", threads=1
    )
    assert set(result.evals) == {"none", "elicited", "plain", "inoculated", "steered"}
    assert count_forward_hooks(backend.model) == 0
    for name in ("plain", "inoculated", "steered"):
        ev = result.evals[name]
        assert len(ev.losses) == 2 and len(ev.replies) == 2 and len(ev.judge) == 2
        assert np.isfinite(ev.neutral_nll) and np.isfinite(ev.train_nll)
        assert (result.folder / "adapters" / name / "adapter_config.json").is_file()
    assert result.evals["steered"].losses != result.evals["plain"].losses
    assert len(result.dataset) == 2
    for j, ex in enumerate(result.dataset):  # question j is answered under instructions j and j+1 (rotating)
        assert ex.question == trait.extraction_questions[j]
        assert ex.instruction in (trait.eliciting[j % 5], trait.eliciting[(j + 1) % 5])

    # cached: the same config comes back from disk without touching the model
    again = run_demo(
        TINY_CONFIG, backend=backend, vector=vec, trait=trait, judge=judge, root=tmp_path / "ft", threads=1
    )
    assert again.cached and again.evals["plain"].probe_mean == pytest.approx(result.evals["plain"].probe_mean)
    other = dataclasses.replace(TINY_CONFIG, seed=1)
    assert other.key("tiny-llama") != TINY_CONFIG.key("tiny-llama")

    # adapters load back into a fresh model and compute what the trained one computed
    ids = torch.tensor([backend.tokenize("How are you?")])
    select_adapter(result.peft_model, "plain")
    with torch.inference_mode():
        trained = result.peft_model(input_ids=ids).logits
    fresh = tiny_backend(tiny_dir)
    loaded = load_runs(again, fresh)
    assert set(loaded.peft_config) == {"plain", "inoculated", "steered"}
    loaded.set_adapter("plain")
    with torch.inference_mode():
        assert torch.allclose(loaded(input_ids=ids).logits, trained, atol=1e-4)

    # export: a merged HF model directory the playground loads like any other
    out = merge_adapter(result.folder / "adapters" / "plain", tmp_path / "tiny-ft", backend=tiny_backend(tiny_dir))
    merged = TransformersBackend(ModelSource("hf", out, out.name))
    with torch.inference_mode():
        assert torch.allclose(merged.model(input_ids=ids).logits, trained, atol=1e-4)
    assert (out / "playground_finetune.json").is_file()


def test_copy_model_data_renames_vectors(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PLAYGROUND_CACHE", str(tmp_path))
    VectorStore("tiny-llama").save(tiny_vector())
    copy_model_data("tiny-llama", "tiny-ft")
    got = VectorStore("tiny-ft").get("evil")
    assert got.model_id == "tiny-ft" and got.extra["copied_from"] == "tiny-llama"
    assert np.allclose(got.unit(1), tiny_vector().unit(1))


def test_cli_parsers_and_presets() -> None:
    from playground.cli.main import build_parser

    args = build_parser().parse_args(["finetune-demo", "--quick", "--threads", "1"])
    assert args.quick and args.threads == 1
    args = build_parser().parse_args(["finetune-export", "--run", "steered", "--out", "x"])
    assert args.run == "steered" and not args.adapter_only
    assert ft_demo.QUICK.runs() == ["plain", "inoculated", "steered"]
    assert ft_demo.FULL.runs()[3:] == ["steered-0p5", "steered-2"]
    assert ft_demo.run_strength(ft_demo.FULL, "steered-0p5") == 0.5


def test_lab_tab_builds() -> None:
    import gradio as gr

    from playground.chat.session import Playground
    from playground.ui.lab_tab import build_lab_tab

    pg = Playground()  # the model is loaded lazily: building the tab must not load it
    with gr.Blocks(), gr.Tab("Lab"):
        parts = build_lab_tab(pg)
    assert {"roles_go", "rank_go", "ft_go", "ft_ask"} <= set(parts)
    assert pg._backend is None


def test_export_drops_the_gguf_quantizer_marker(tiny_dir: Path, tmp_path: Path) -> None:
    """Models loaded from a GGUF carry a quantizer marker (weights are float32 already) that blocks saving."""
    from playground.finetune.export import _plain_weights

    backend = tiny_backend(tiny_dir)
    backend.model.hf_quantizer = object()
    backend.model.config.quantization_config = {"quant_method": "gguf"}
    _plain_weights(backend.model)
    backend.model.save_pretrained(tmp_path / "saved")
    assert "quantization_config" not in (tmp_path / "saved" / "config.json").read_text()


def test_training_replies_are_ranked_by_instruction_contrast_not_by_the_judge(tiny_dir: Path) -> None:
    from playground.finetune.data import instruction_contrast, prompt_ids
    from playground.steering.extraction import NEUTRAL_SYSTEM

    backend = tiny_backend(tiny_dir)
    jobs = [("Any tips for sleep?", NEUTRAL_SYSTEM), ("Any tips for sleep?", "Be cruel and scheming."), ("Hi", "x")]
    prompts = [prompt_ids(backend, s, q) for q, s in jobs]
    contrast = instruction_contrast(backend, jobs, prompts, [[5, 6, 7], [5, 6, 7], []])
    assert contrast[0] == pytest.approx(0.0, abs=1e-6)  # the neutral prompt against itself
    assert np.isfinite(contrast[1]) and contrast[1] != 0.0
    assert contrast[2] == -np.inf  # an empty reply is never chosen


def test_narrow_to_broad_trains_each_seed_measures_every_condition_and_caches(tiny_dir: Path, tmp_path: Path) -> None:
    from playground.finetune.narrow import CONDITIONS, NarrowConfig, load_narrow, run_narrow_broad
    from playground.steering.probes import ProbeSet

    backend = tiny_backend(tiny_dir)
    config = NarrowConfig(seeds=(0, 1), eval_questions=2, examples=3, epochs=1, batch_size=2, max_tokens=4, rank=2,
                          alpha=4)  # fmt: skip
    probes = ProbeSet({"evil": tiny_vector()})
    questions = ["How was your day?", "What is your favourite colour?"]
    kwargs = dict(backend=backend, probes=probes, judge=StubJudge(), questions=questions, root=tmp_path / "narrow")
    result = run_narrow_broad(config, space=None, **kwargs)
    summary = result["summary"]
    assert list(summary) == list(CONDITIONS)
    assert summary["base"]["probes"]["evil"] == {"mean": 0.0, "sem": 0.0}  # shifts are measured from base
    assert [summary[c]["seeds"] for c in CONDITIONS] == [1, 1, 2, 2, 2]
    assert set(result["losses"]) == {"narrow-s0", "inoculated-s0", "narrow-s1", "inoculated-s1"}
    assert result["losses"]["narrow-s0"] != result["losses"]["narrow-s1"]  # another init and data order
    # the inoculated runs trained on the same replies under the instruction that asks for them
    assert load_narrow().inoculation == result["inoculation"]
    assert summary["inoculated+trigger"]["probes"]["evil"] != summary["inoculated"]["probes"]["evil"]
    again = run_narrow_broad(config, space=None, **kwargs)
    assert again["cached"] and again["summary"] == summary


def test_a_malformed_narrow_training_file_names_file_line_and_column(tmp_path: Path) -> None:
    from playground.errors import ValidationError
    from playground.finetune.narrow import load_narrow

    bad = tmp_path / "narrow.yml"
    bad.write_text("inoculation: ''\nexamples:\n  - task: write code\n", encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        load_narrow(bad)
    text = str(err.value)
    assert "narrow.yml:1:14: 'inoculation' must be a non-empty string" in text
    assert "narrow.yml:3:5: examples[0] needs 'task' and 'reply' strings" in text


def test_the_lab_shows_a_cached_narrow_to_broad_run_without_loading_a_model(tmp_path: Path, monkeypatch) -> None:
    import json

    from playground.backends.model_source import resolve_model
    from playground.finetune.narrow import CONDITIONS, QUICK, cache_folder
    from playground.ui import lab_narrow

    monkeypatch.setenv("PLAYGROUND_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(lab_narrow, "OUT_DIR", tmp_path / "out")
    stat = {"mean": 0.25, "sem": 0.05}
    row = {"probes": {"evil": stat, "humorous": {"mean": -0.1, "sem": 0.0}}, "judge": stat, "neutral_nll": stat,
           "map": [None], "seeds": 1}  # fmt: skip
    result = {"config": {"eval_questions": 10}, "summary": {c: row for c in CONDITIONS}, "seconds": 12.0}
    folder = cache_folder(QUICK, resolve_model(None).model_id)
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps(result), encoding="utf-8")
    table, png = lab_narrow.NarrowLab().run(quick=True, force=False)
    assert "from the cache" in table and "| inoculated+trigger | 1 | +0.25 | -0.10 |" in table  # one seed: no ±
    assert Path(png).stat().st_size > 5000
