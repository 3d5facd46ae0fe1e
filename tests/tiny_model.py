"""A tiny random-weight llama (3 layers, width 32) with the default model's tokenizer and chat template, saved
as a transformers folder; optionally laid out as a Hugging Face Hub cache entry, so that ``--model org/name``
finds it offline exactly as it finds a downloaded model."""

from __future__ import annotations

from pathlib import Path

import torch

from playground.backends.model_source import embedded_gguf

SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"  # a commit hash, as the Hub cache names snapshots


def save_tiny_llama(path: Path, seed: int = 0, layers: int = 3) -> Path:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    gguf = embedded_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    config = LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=len(tokenizer), max_position_embeddings=512, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, initializer_range=0.2,  # larger than default: greedy avoids near-ties
    )  # fmt: skip
    torch.manual_seed(seed)
    path.mkdir(parents=True, exist_ok=True)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def save_in_hub_cache(hub_cache: Path, repo_id: str, seed: int = 0) -> Path:
    """The tiny model as the Hub cache stores ``repo_id`` (``models--org--name/snapshots/<commit>``, ``refs/main``)."""
    entry = hub_cache / f"models--{repo_id.replace('/', '--')}"
    (entry / "refs").mkdir(parents=True, exist_ok=True)
    (entry / "refs" / "main").write_text(SNAPSHOT)
    return save_tiny_llama(entry / "snapshots" / SNAPSHOT, seed)
