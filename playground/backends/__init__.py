"""Model backends behind one protocol: generate (streaming), steer, read activations."""

from __future__ import annotations

from ..errors import ModelError
from .base import Backend, Step
from .model_source import ModelSource, resolve_model


def load_backend(model: str | ModelSource | None = None, backend: str = "auto", n_ctx: int = 4096) -> Backend:
    """Load a model by spec. ``backend``: 'auto', 'llama_cpp', 'transformers' or 'vllm'."""
    source = model if isinstance(model, ModelSource) else resolve_model(model)
    choice = backend
    if choice == "auto":
        choice = "llama_cpp" if source.kind == "gguf" else "transformers"
    if choice == "llama_cpp":
        if source.kind != "gguf":
            raise ModelError(f"{source.path}: the llama.cpp backend needs a .gguf file; use --backend transformers")
        from .llama_cpp import LlamaCppBackend

        return LlamaCppBackend(source, n_ctx=n_ctx)
    if choice == "transformers":
        from .transformers import TransformersBackend

        return TransformersBackend(source)
    if choice == "vllm":
        from .vllm_engine import shared_engine

        return shared_engine(source, n_ctx=n_ctx)  # one engine per model in a process: requests share its batch
    raise ModelError(f"unknown backend '{backend}'; choose auto, llama_cpp, transformers or vllm")


__all__ = ["Backend", "Step", "load_backend"]
