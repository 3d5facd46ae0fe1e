"""Persona / trait vectors: one direction per layer in the residual stream, plus what it means.

Layers follow the library convention (``playground.backends.base``): a 0-based block index, the
direction at layer ``l`` lives at the output of block ``l`` (llama.cpp ``l_out-l``, control-vector
tensor ``direction.<l>``). This module is the value type (checks, arithmetic, readouts); its files
(``<prefix>.safetensors`` + ``<prefix>.json``, and llama.cpp's control-vector GGUF) live in
``vector_files.py``, behind ``save``/``load``/``to_gguf``/``from_gguf``.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .probe_direction import Probe
from .vector_files import load_vector, read_control_gguf, save_vector, write_control_gguf


@dataclass(eq=False)
class TraitVector:
    """A trait direction per layer, with how to read (``calibration``) and steer (``steer_scale``) it.

    ``calibration[l]`` is the (mean, std) of neutral-assistant activations projected onto the *unit*
    direction at layer ``l``; ``steer_scale[l]`` is how many raw units "strength 1" means there. ``probe``, when
    present, is what the live panel reads instead of ``directions[probe_layer]`` (its own direction).

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
    probe: Probe | None = None  # the live readout, when fit jointly with the other traits (probe_fit.py)

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
            and (self.probe is None) == (other.probe is None)
            and (self.probe is None or np.array_equal(self.probe.direction, other.probe.direction))  # type: ignore[union-attr]
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
    def readout(self) -> Probe | None:
        """What the live panel reads: the jointly fit ``probe``, else the direction at ``probe_layer`` with its
        calibration (vectors extracted before probes were fit, imported ones); None when neither exists."""
        if self.probe is not None:
            return self.probe
        layer = self.probe_layer
        if layer is None or layer not in self.calibration or layer not in self.directions:
            return None
        mean, std = self.calibration[layer]
        return Probe(layer, self.unit(layer), mean, std, self.method)

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

    # ---- files (vector_files.py) ----------------------------------------------------------------------
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
            **({"probe": self.probe.meta()} if self.probe is not None else {}),
        }

    def save(self, path_prefix: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``<prefix>.safetensors`` and ``<prefix>.json`` atomically; returns both paths."""
        return save_vector(self, path_prefix)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TraitVector:
        """Read a vector written by :meth:`save`; ``path`` is the prefix or either of the two files."""
        return load_vector(cls, path)

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
        return write_control_gguf(self, path, layers, scale, model_hint)

    @classmethod
    def from_gguf(
        cls, path: str | os.PathLike[str], trait: str | None = None, model_id: str = "unknown"
    ) -> TraitVector:
        """Import a llama.cpp / repeng control-vector GGUF (``direction.<l>`` F32 tensors)."""
        return read_control_gguf(cls, path, trait, model_id)


def _is_number(x: object) -> bool:
    return not isinstance(x, bool) and isinstance(x, int | float | np.integer | np.floating)
