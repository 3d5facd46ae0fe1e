"""Persona / trait vectors: one direction per layer in the residual stream, plus what it means.

Layers follow the library convention (``playground.backends.base``): a 0-based block index, the
direction at layer ``l`` lives at the output of block ``l`` (llama.cpp ``l_out-l``, control-vector
tensor ``direction.<l>``). Files: ``<prefix>.safetensors`` holds ``direction.<l>`` float32 tensors,
``<prefix>.json`` the metadata. ``to_gguf``/``from_gguf`` speak llama.cpp's (and repeng's)
control-vector GGUF.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
_TENSOR = re.compile(r"^direction\.(\d+)$")


@dataclass(eq=False)
class TraitVector:
    """A trait direction per layer, with how to read (``calibration``) and steer (``steer_scale``) it.

    ``calibration[l]`` is the (mean, std) of neutral-assistant activations projected onto the *unit*
    direction at layer ``l``; ``steer_scale[l]`` is how many raw units "strength 1" means there.

    Arithmetic (``+``, ``-`` between vectors) works layer-wise on the union of layers (a missing layer
    counts as zero) and keeps the left operand's metadata, except ``calibration``, which is dropped: the
    sum points elsewhere, so the neutral statistics no longer apply. Scaling by a number keeps the unit
    direction up to sign, so calibration is kept exactly (means negated for a negative factor; dropped
    for zero).
    """

    directions: dict[int, np.ndarray]
    trait: str
    model_id: str
    method: str = "mean_diff"
    probe_layer: int | None = None
    steer_layer: int | None = None
    calibration: dict[int, tuple[float, float]] = field(default_factory=dict)
    steer_scale: dict[int, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.directions:
            raise ValueError(f"trait vector {self.trait!r} has no directions; give at least one layer")
        dirs: dict[int, np.ndarray] = {}
        for layer, vec in self.directions.items():
            arr = np.ascontiguousarray(vec, dtype=np.float32)
            if int(layer) < 0 or arr.ndim != 1 or arr.size == 0:
                raise ValueError(
                    f"trait vector {self.trait!r}: layer {layer} needs a layer >= 0 and a (d_model,) "
                    f"vector, got shape {arr.shape}"
                )
            dirs[int(layer)] = arr
        sizes = {a.shape[0] for a in dirs.values()}
        if len(sizes) != 1:
            raise ValueError(f"trait vector {self.trait!r}: layers disagree on d_model: {sorted(sizes)}")
        self.directions = dict(sorted(dirs.items()))
        self.calibration = {int(k): (float(m), float(s)) for k, (m, s) in self.calibration.items()}
        self.steer_scale = {int(k): float(v) for k, v in self.steer_scale.items()}
        self.probe_layer = None if self.probe_layer is None else int(self.probe_layer)
        self.steer_layer = None if self.steer_layer is None else int(self.steer_layer)

    # ---- basics -------------------------------------------------------------------------------------
    @property
    def d_model(self) -> int:
        """Width of the residual stream the directions live in."""
        return int(next(iter(self.directions.values())).shape[0])

    @property
    def layers(self) -> list[int]:
        """The layers that carry a direction, ascending."""
        return sorted(self.directions)

    def _get(self, layer: int) -> np.ndarray:
        try:
            return self.directions[layer]
        except KeyError:
            raise KeyError(
                f"trait vector {self.trait!r} has no direction at layer {layer}; it has layers {self.layers}"
            ) from None

    def norm(self, layer: int) -> float:
        """Euclidean norm of the raw direction at ``layer``."""
        return float(np.linalg.norm(self._get(layer).astype(np.float64)))

    def unit(self, layer: int) -> np.ndarray:
        """The direction at ``layer`` scaled to norm 1 (float32); ValueError if it is all zeros."""
        n = self.norm(layer)
        if not np.isfinite(n) or n == 0.0:
            raise ValueError(
                f"trait vector {self.trait!r}: direction at layer {layer} has norm {n}; it has no unit direction"
            )
        return (self._get(layer).astype(np.float64) / n).astype(np.float32)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TraitVector):
            return NotImplemented
        return (
            self.layers == other.layers
            and all(np.array_equal(self.directions[k], other.directions[k]) for k in self.layers)
            and self._meta() == other._meta()
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"TraitVector(trait={self.trait!r}, model_id={self.model_id!r}, method={self.method!r}, "
            f"layers={self.layers}, d_model={self.d_model})"
        )

    # ---- arithmetic ---------------------------------------------------------------------------------
    def _check_compatible(self, other: TraitVector) -> None:
        if self.model_id != other.model_id:
            raise ValueError(
                f"cannot combine trait vectors of different models: {self.trait!r} is for "
                f"{self.model_id!r}, {other.trait!r} is for {other.model_id!r}"
            )
        if self.d_model != other.d_model:
            raise ValueError(
                f"cannot combine trait vectors of different widths: {self.trait!r} has d_model "
                f"{self.d_model}, {other.trait!r} has d_model {other.d_model}"
            )

    def _derived(
        self, directions: dict[int, np.ndarray], trait: str, calibration: dict[int, tuple[float, float]]
    ) -> TraitVector:
        return TraitVector(
            directions,
            trait,
            self.model_id,
            self.method,
            self.probe_layer,
            self.steer_layer,
            calibration,
            dict(self.steer_scale),
            copy.deepcopy(self.extra),
        )

    def _combine(self, other: object, sign: float, op: str) -> TraitVector:
        if not isinstance(other, TraitVector):
            return NotImplemented
        self._check_compatible(other)
        zero = np.zeros(self.d_model, dtype=np.float32)
        dirs = {
            k: self.directions.get(k, zero) + np.float32(sign) * other.directions.get(k, zero)
            for k in sorted(set(self.directions) | set(other.directions))
        }
        right = f"({other.trait})" if op == "-" and re.search(r"[+\-]", other.trait) else other.trait
        return self._derived(dirs, f"{self.trait}{op}{right}", {})

    def __add__(self, other: object) -> TraitVector:
        return self._combine(other, 1.0, "+")

    def __sub__(self, other: object) -> TraitVector:
        return self._combine(other, -1.0, "-")

    def _scaled(self, factor: float, trait: str, divide: bool = False) -> TraitVector:
        f = np.float32(factor)
        cal = {} if f == 0 else {k: (m if f > 0 else -m, s) for k, (m, s) in self.calibration.items()}
        return self._derived({k: (v / f if divide else v * f) for k, v in self.directions.items()}, trait, cal)

    def __mul__(self, factor: object) -> TraitVector:
        if not _is_number(factor):
            return NotImplemented
        return self._scaled(float(factor), self.trait)

    __rmul__ = __mul__

    def __truediv__(self, factor: object) -> TraitVector:
        if not _is_number(factor):
            return NotImplemented
        if float(factor) == 0.0:
            raise ZeroDivisionError(f"cannot divide trait vector {self.trait!r} by zero")
        return self._scaled(float(factor), self.trait, divide=True)

    def __neg__(self) -> TraitVector:
        name = f"-({self.trait})" if re.search(r"[+\-]", self.trait) else f"-{self.trait}"
        return self._scaled(-1.0, name)

    # ---- readouts -----------------------------------------------------------------------------------
    def project(self, layer: int, activations: np.ndarray) -> np.ndarray:
        """Raw projection of (n, d_model) or (d_model,) activations onto the unit direction at ``layer``.

        Returns float64 of shape (n,), or a 0-d array for a single vector.
        """
        acts = np.asarray(activations, dtype=np.float64)
        if acts.ndim not in (1, 2) or acts.shape[-1] != self.d_model:
            raise ValueError(
                f"trait vector {self.trait!r}: activations must be (n, {self.d_model}) or "
                f"({self.d_model},), got shape {acts.shape}"
            )
        return np.asarray(acts @ self.unit(layer).astype(np.float64))

    def calibrated(self, layer: int, activations: np.ndarray) -> np.ndarray:
        """Projections as z-scores against the neutral-assistant calibration at ``layer`` (0 = typical)."""
        if layer not in self.calibration:
            raise ValueError(
                f"trait vector {self.trait!r} has no calibration for layer {layer}; calibrated "
                f"layers: {sorted(self.calibration)}"
            )
        mean, std = self.calibration[layer]
        if not std > 0:
            raise ValueError(f"trait vector {self.trait!r}: calibration std at layer {layer} is {std}; must be > 0")
        return (self.project(layer, activations) - mean) / std

    # ---- files --------------------------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        return {
            "trait": self.trait,
            "model_id": self.model_id,
            "method": self.method,
            "probe_layer": self.probe_layer,
            "steer_layer": self.steer_layer,
            "calibration": {str(k): [m, s] for k, (m, s) in sorted(self.calibration.items())},
            "steer_scale": {str(k): v for k, v in sorted(self.steer_scale.items())},
            "extra": self.extra,
        }

    def save(self, path_prefix: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``<prefix>.safetensors`` and ``<prefix>.json`` atomically; returns both paths."""
        from safetensors.numpy import save as st_save

        st_path, js_path = _paths(path_prefix)
        meta = {
            "format_version": FORMAT_VERSION,
            **self._meta(),
            "d_model": self.d_model,
            "layers": self.layers,
            "norms": {str(k): self.norm(k) for k in self.layers},
        }
        text = json.dumps(meta, indent=2, default=_json_default) + "\n"
        blob = st_save({f"direction.{k}": v for k, v in self.directions.items()})
        with _atomic(st_path) as tmp:
            tmp.write_bytes(blob)
        with _atomic(js_path) as tmp:
            tmp.write_text(text, encoding="utf-8")
        return st_path, js_path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TraitVector:
        """Read a vector written by :meth:`save`; ``path`` is the prefix or either of the two files."""
        from safetensors.numpy import load_file

        st_path, js_path = _paths(path)
        for p in (js_path, st_path):
            if not p.is_file():
                raise FileNotFoundError(
                    f"{p}: trait vector file not found (save() writes <prefix>.safetensors "
                    "and <prefix>.json side by side)"
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
        for name, arr in tensors.items():
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
            )
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise ValueError(f"{js_path}: invalid trait vector metadata: {e}") from None
        if "d_model" in meta and meta["d_model"] != vec.d_model:
            raise ValueError(f"{st_path}: directions have d_model {vec.d_model}, metadata says {meta['d_model']}")
        return vec

    def to_gguf(
        self,
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

        chosen = self.layers if layers is None else sorted({int(k) for k in layers})
        for k in chosen:
            self._get(k)
        if 0 in chosen:
            chosen = [k for k in chosen if k != 0]
            if not chosen:
                raise ValueError(
                    f"trait vector {self.trait!r}: layer 0 cannot be a llama.cpp control vector "
                    "(steering starts at block 1); choose layers >= 1"
                )
            warnings.warn(
                f"trait vector {self.trait!r}: skipping layer 0 in {path}; llama.cpp cannot steer block 0", stacklevel=2
            )
        out = Path(path)
        with _atomic(out) as tmp:
            writer = gguf.GGUFWriter(tmp, arch="controlvector")
            writer.add_name(self.trait)
            writer.add_string("controlvector.model_hint", model_hint or self.model_id)
            writer.add_uint32("controlvector.layer_count", len(chosen))
            for k in chosen:
                writer.add_tensor(f"direction.{k}", (self.directions[k] * np.float32(scale)).astype(np.float32))
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
            writer.close()
        return out

    @classmethod
    def from_gguf(
        cls, path: str | os.PathLike[str], trait: str | None = None, model_id: str = "unknown"
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


def _is_number(x: object) -> bool:
    return not isinstance(x, bool) and isinstance(x, int | float | np.integer | np.floating)


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
