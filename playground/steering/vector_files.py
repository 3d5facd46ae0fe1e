"""Trait-vector files: the playground's own pair of files and llama.cpp's control-vector GGUF.

``<prefix>.safetensors`` holds ``direction.<l>`` float32 tensors (and ``probe.<l>``, the live probe's own
direction, when it has one) and ``<prefix>.json`` the metadata
(``FORMAT_VERSION``, trait, model, layers, calibration, steering scale); both are written atomically, so a
reader never sees half a vector. The GGUF side speaks llama.cpp's (and repeng's) control-vector format,
which has no metadata beyond a model hint. ``TraitVector.save``/``load``/``to_gguf``/``from_gguf`` call
these; errors name the file and what was wrong with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .probe_direction import Probe

if TYPE_CHECKING:
    from .vectors import TraitVector

FORMAT_VERSION = 1
_TENSOR = re.compile(r"^direction\.(\d+)$")
_PROBE = re.compile(r"^probe\.(\d+)$")


def save_vector(vec: TraitVector, path_prefix: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``<prefix>.safetensors`` and ``<prefix>.json`` atomically; returns both paths."""
    from safetensors.numpy import save as st_save

    st_path, js_path = _paths(path_prefix)
    meta = {
        "format_version": FORMAT_VERSION,
        **vec._meta(),
        "d_model": vec.d_model,
        "layers": vec.layers,
        "norms": {str(k): vec.norm(k) for k in vec.layers},
    }
    text = json.dumps(meta, indent=2, default=_json_default) + "\n"
    tensors = {f"direction.{k}": v for k, v in vec.directions.items()}
    if vec.probe is not None:
        tensors[f"probe.{vec.probe.layer}"] = vec.probe.direction
    blob = st_save(tensors)
    with _atomic(st_path) as tmp:
        tmp.write_bytes(blob)
    with _atomic(js_path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return st_path, js_path


def load_vector(cls: type[TraitVector], path: str | os.PathLike[str]) -> TraitVector:
    """Read a vector written by ``save_vector``; ``path`` is the prefix or either of the two files."""
    from safetensors.numpy import load_file

    st_path, js_path = _paths(path)
    for p in (js_path, st_path):
        if not p.is_file():
            raise FileNotFoundError(
                f"{p}: trait vector file not found (save() writes <prefix>.safetensors and <prefix>.json side by side)"
            )
    try:
        meta = json.loads(js_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{js_path}: not valid JSON: {e}") from None
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        got = meta.get("format_version") if isinstance(meta, dict) else None
        raise ValueError(
            f"{js_path}: unsupported trait vector format_version {got!r}; this version reads {FORMAT_VERSION}"
        )
    try:
        tensors = load_file(str(st_path))
    except Exception as e:  # safetensors raises its own error type for corrupt files
        raise ValueError(f"{st_path}: not a readable safetensors file: {e}") from None
    dirs: dict[int, np.ndarray] = {}
    probe_rows = {n: a for n, a in tensors.items() if _PROBE.match(n) and a.ndim == 1}
    for name, arr in tensors.items():
        if name in probe_rows:
            continue
        m = _TENSOR.match(name)
        if m is None or arr.ndim != 1:
            raise ValueError(
                f"{st_path}: unexpected tensor {name!r} of shape {arr.shape}; "
                "expected 1-D tensors named direction.<layer>"
            )
        dirs[int(m.group(1))] = arr.astype(np.float32, copy=False)
    if "layers" in meta and sorted(dirs) != sorted(meta["layers"]):
        raise ValueError(f"{st_path}: holds layers {sorted(dirs)} but {js_path.name} lists {meta['layers']}")
    try:
        vec = cls(
            dirs,
            str(meta["trait"]),
            str(meta["model_id"]),
            str(meta.get("method", "unknown")),
            meta.get("probe_layer"),
            meta.get("steer_layer"),
            {int(k): (v[0], v[1]) for k, v in meta.get("calibration", {}).items()},
            {int(k): v for k, v in meta.get("steer_scale", {}).items()},
            dict(meta.get("extra", {})),
            _probe(meta, probe_rows),
        )
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise ValueError(f"{js_path}: invalid trait vector metadata: {e}") from None
    if "d_model" in meta and meta["d_model"] != vec.d_model:
        raise ValueError(f"{st_path}: directions have d_model {vec.d_model}, metadata says {meta['d_model']}")
    return vec


def _probe(meta: dict[str, Any], rows: dict[str, np.ndarray]) -> Probe | None:
    if "probe" not in meta:
        return None
    name = f"probe.{int(meta['probe']['layer'])}"
    if name not in rows:
        raise ValueError(f"metadata names a probe at layer {meta['probe']['layer']} but there is no tensor {name}")
    return Probe.from_meta(meta["probe"], rows[name])


def write_control_gguf(
    vec: TraitVector,
    path: str | os.PathLike[str],
    layers: list[int] | None = None,
    scale: float = 1.0,
    model_hint: str | None = None,
) -> Path:
    """Write a llama.cpp / repeng control-vector GGUF holding ``directions[l] * scale`` per layer.

    llama.cpp adds ``direction.<l>`` to ``l_out-l`` and cannot steer block 0, so layer 0 is skipped
    with a warning (ValueError if nothing else is left). ``model_hint`` defaults to ``model_id``.
    """
    import gguf

    chosen = vec.layers if layers is None else sorted({int(k) for k in layers})
    for k in chosen:
        vec._get(k)
    if 0 in chosen:
        chosen = [k for k in chosen if k != 0]
        if not chosen:
            raise ValueError(
                f"trait vector {vec.trait!r}: layer 0 cannot be a llama.cpp control vector "
                "(steering starts at block 1); choose layers >= 1"
            )
        warnings.warn(
            f"trait vector {vec.trait!r}: skipping layer 0 in {path}; llama.cpp cannot steer block 0", stacklevel=2
        )
    out = Path(path)
    with _atomic(out) as tmp:
        writer = gguf.GGUFWriter(tmp, arch="controlvector")
        writer.add_name(vec.trait)
        writer.add_string("controlvector.model_hint", model_hint or vec.model_id)
        writer.add_uint32("controlvector.layer_count", len(chosen))
        for k in chosen:
            writer.add_tensor(f"direction.{k}", (vec.directions[k] * np.float32(scale)).astype(np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return out


def read_control_gguf(
    cls: type[TraitVector], path: str | os.PathLike[str], trait: str | None = None, model_id: str = "unknown"
) -> TraitVector:
    """Import a llama.cpp / repeng control-vector GGUF (``direction.<l>`` F32 tensors)."""
    import gguf

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: control-vector GGUF not found")
    try:
        reader = gguf.GGUFReader(p)
    except Exception as e:  # the reader raises ValueError / struct errors on non-GGUF bytes
        raise ValueError(f"{p}: not a readable GGUF file: {e}") from None
    arch = _gguf_str(reader, "general.architecture")
    if arch != "controlvector":
        raise ValueError(
            f"{p}: general.architecture is {arch!r}, not 'controlvector'; this is not a "
            "control-vector GGUF (a model file?)"
        )
    dirs: dict[int, np.ndarray] = {}
    for t in reader.tensors:
        m = _TENSOR.match(t.name)
        if m is None:
            raise ValueError(f"{p}: unexpected tensor {t.name!r}; control vectors hold direction.<layer> only")
        if t.tensor_type not in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            raise ValueError(f"{p}: tensor {t.name} has type {t.tensor_type.name}; expected F32")
        if len(t.shape) != 1:
            raise ValueError(f"{p}: tensor {t.name} has shape {list(t.shape)}; expected (d_model,)")
        dirs[int(m.group(1))] = np.array(t.data, dtype=np.float32).reshape(-1)
    if not dirs:
        raise ValueError(f"{p}: control-vector GGUF holds no direction.<layer> tensors")
    extra: dict[str, Any] = {"source": str(p)}
    hint = _gguf_str(reader, "controlvector.model_hint")
    if hint is not None:
        extra["model_hint"] = hint
    try:
        return cls(dirs, trait or p.stem, model_id, "imported", extra=extra)
    except ValueError as e:
        raise ValueError(f"{p}: {e}") from None


def _paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    s = os.fspath(path)
    for suffix in (".safetensors", ".json"):
        if s.endswith(suffix):
            s = s[: -len(suffix)]
            break
    return Path(s + ".safetensors"), Path(s + ".json")


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success fsync it and os.replace it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _gguf_str(reader: Any, key: str) -> str | None:
    f = reader.get_field(key)
    if f is None or not f.data:
        return None
    return bytes(f.parts[f.data[0]]).decode("utf-8", errors="replace")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} in trait vector metadata is not JSON-serialisable")
