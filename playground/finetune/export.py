"""Export a fine-tuning run so it can be chatted with in the playground.

Adapters are saved by peft (``adapter_config.json`` + ``adapter_model.safetensors``) under the demo's
cache folder. ``merge_adapter`` loads the base model in transformers, merges one adapter into its
weights and writes a plain Hugging Face model directory (weights, config, tokenizer with the chat
template). The playground loads it with ``--model DIR`` (the transformers backend; the model id is the
directory's name). The base model's trait vectors, calibration and prompt-screening probe are copied
for that model id into the user cache, so probes, steering and guardrails work on the fine-tune too —
measured on the fine-tuned model's activations, in the base model's units.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..errors import PlaygroundError
from ..steering.store import VectorStore, user_cache_dir


def merge_adapter(
    adapter: str | Path,
    out: str | Path,
    *,
    model: str | None = None,
    backend=None,
    force: bool = False,
    copy_probes: bool = True,
    meta: dict | None = None,
) -> Path:
    """Merge the LoRA adapter in folder ``adapter`` into the base model; write a HF model dir ``out``."""
    from peft import PeftModel

    adapter, out = Path(adapter), Path(out).expanduser()
    if not (adapter / "adapter_config.json").is_file():
        raise PlaygroundError(f"{adapter}: no adapter_config.json; run `python -m playground finetune-demo` first")
    if out.exists() and any(out.iterdir()) and not force:
        raise PlaygroundError(f"{out} exists and is not empty; pass --force to overwrite it")
    if backend is None:
        from ..backends import load_backend

        backend = load_backend(model, backend="transformers")
    merged = PeftModel.from_pretrained(backend.model, str(adapter)).merge_and_unload()
    _plain_weights(merged)
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    merged.save_pretrained(str(tmp), safe_serialization=True)
    backend.tokenizer.save_pretrained(str(tmp))
    info = {"base_model": backend.model_id, "adapter": str(adapter), **(meta or {})}
    (tmp / "playground_finetune.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    tmp.replace(out)
    if copy_probes and out.name != backend.model_id:
        copy_model_data(backend.model_id, out.name)
    return out


def _plain_weights(model) -> None:
    """A model loaded from a GGUF keeps a GGUF "quantizer" marker, although its weights were de-quantized to
    float32 at load time; transformers refuses to save such a model. Drop the marker: what is saved is the
    plain float32 weights."""
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    if hasattr(model, "is_quantized"):
        model.is_quantized = False
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config


def copy_model_data(base_id: str, new_id: str) -> list[Path]:
    """Copy the base model's trait vectors (and screening probe) to model id ``new_id`` in the user cache."""
    written = []
    store = VectorStore(new_id)
    for vec in VectorStore(base_id).all().values():
        vec.model_id = new_id
        vec.extra = {**vec.extra, "copied_from": base_id}
        written.append(store.save(vec))
    from ..guard.screening import guard_dirs

    for folder in guard_dirs(base_id):
        js = folder / "screening.json"
        if js.is_file():
            target = user_cache_dir() / new_id / "guard"
            target.mkdir(parents=True, exist_ok=True)
            meta = json.loads(js.read_text(encoding="utf-8"))
            meta["model_id"] = new_id
            shutil.copyfile(folder / "screening.safetensors", target / "screening.safetensors")
            (target / "screening.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
            written.append(target / "screening.json")
            break
    return written
