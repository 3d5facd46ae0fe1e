"""Reading and changing llama.cpp activations through the scheduler's eval callback (``cb_eval``).

The scheduler asks about every graph node ("do you want it?") and then calls back once more for each node
we said yes to, after computing it and before anything reads it. We want the residual-stream outputs
``l_out-<layer>`` of a few layers: to copy the row that predicts the next token (live probes), to copy
every row (teacher-forced reads) or to rewrite rows in place (guardrail interventions).

Two implementations with the same results:

- ``NativeFilter``: a small C function (playground/native/evalfilter.c, built with the package) answers
  the ask phase and copies last rows itself; Python runs only for all-row reads and interventions.
- ``PythonFilter``: everything in a ctypes callback (used when the C module was not built); it costs
  about a thousand Python calls per forward pass.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from pathlib import Path

import llama_cpp
import numpy as np

from .base import Interventions

MAX_LAYERS = 256


def _ggml_base() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"))
    lib.ggml_get_name.argtypes = [ctypes.c_void_p]
    lib.ggml_get_name.restype = ctypes.c_char_p
    lib.ggml_nelements.argtypes = [ctypes.c_void_p]
    lib.ggml_nelements.restype = ctypes.c_int64
    lib.ggml_backend_tensor_get.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t]
    lib.ggml_backend_tensor_get.restype = None
    lib.ggml_backend_tensor_set.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t]
    lib.ggml_backend_tensor_set.restype = None
    return lib


_GGML = _ggml_base()


def _mask(layers: set[int]) -> list[int]:
    words = [0] * (MAX_LAYERS // 64)
    for layer in layers:
        words[layer >> 6] |= 1 << (layer & 63)
    return words


class _FilterState(ctypes.Structure):
    """Mirror of ``pg_filter`` in evalfilter.c."""

    _fields_ = [
        ("get_name", ctypes.c_void_p),
        ("nelements", ctypes.c_void_p),
        ("tensor_get", ctypes.c_void_p),
        ("slow_path", ctypes.c_void_p),
        ("wanted", ctypes.c_uint64 * (MAX_LAYERS // 64)),
        ("slow", ctypes.c_uint64 * (MAX_LAYERS // 64)),
        ("last_rows", ctypes.c_void_p),
        ("d_model", ctypes.c_int64),
        ("calls", ctypes.c_int64),
    ]


def _load_native() -> ctypes.CDLL | None:
    try:
        from .. import _evalfilter
    except ImportError:
        return None
    lib = ctypes.CDLL(_evalfilter.__file__)
    lib.pg_eval_filter.restype = ctypes.c_bool
    lib.pg_eval_filter.argtypes = [ctypes.c_void_p, ctypes.c_bool, ctypes.c_void_p]
    lib.pg_filter_size.restype = ctypes.c_size_t
    if lib.pg_filter_size() != ctypes.sizeof(_FilterState):  # a stale build of an older layout
        return None
    return lib


_NATIVE = _load_native()


def native_available() -> bool:
    return _NATIVE is not None


class EvalFilter:
    """What to read or change in the next forward passes, and where the rows go.

    ``want(layers, all_rows, interventions)`` sets the job; ``sync()`` must run before every decode call
    (interventions may have been added since); ``last_row(layer)`` is the latest row that predicts the next
    token; ``rows[layer]`` collects every row when ``all_rows``.
    """

    native = False

    def __init__(self, d_model: int, n_layers: int):
        if n_layers > MAX_LAYERS:
            raise ValueError(f"at most {MAX_LAYERS} layers, got {n_layers}")
        self.d_model = d_model
        self.layer_of = {f"l_out-{l}".encode(): l for l in range(n_layers)}
        self.last_rows = np.zeros((n_layers, d_model), dtype=np.float32)
        self.capture: frozenset[int] = frozenset()
        self.all_rows = False
        self.rows: dict[int, list[np.ndarray]] = {}
        self.interventions: Interventions | None = None
        self._synced: tuple[int, int] | None = None
        # Kept alive for as long as llama.cpp may call it.
        self._py_callback = llama_cpp.ggml_backend_sched_eval_callback(self._on_node)

    # -- job -----------------------------------------------------------------------------------
    def want(self, layers: Sequence[int], all_rows: bool, interventions: Interventions | None = None) -> None:
        self.capture = frozenset(int(l) for l in layers)
        self.all_rows = all_rows
        self.rows = {int(l): [] for l in layers}
        self.interventions = interventions
        self._synced = None
        self.sync()

    def active(self) -> bool:
        return bool(self.capture) or bool(self.interventions)

    def changed_layers(self) -> set[int]:
        return self.interventions.layers() if self.interventions else set()

    def sync(self) -> None:
        """Bring the C masks up to date (cheap when nothing changed)."""
        key = (id(self.interventions), len(self.interventions) if self.interventions else 0)
        if key != self._synced:
            self._synced = key
            self._set_masks(set(self.capture) | self.changed_layers(), self._slow_layers())

    def _slow_layers(self) -> set[int]:
        return (set(self.capture) if self.all_rows else set()) | self.changed_layers()

    def _set_masks(self, wanted: set[int], slow: set[int]) -> None:  # overridden by NativeFilter
        pass

    def last_row(self, layer: int) -> np.ndarray:
        return self.last_rows[layer].copy()

    # -- callback ------------------------------------------------------------------------------
    def install(self, params: llama_cpp.llama_context_params) -> None:
        params.cb_eval = self._py_callback
        params.cb_eval_user_data = None

    def _on_node(self, tensor: int, ask: bool, _user: int) -> bool:
        """Python handling of one node: the whole job for PythonFilter, the slow path for NativeFilter."""
        layer = self.layer_of.get(_GGML.ggml_get_name(tensor))
        if layer is None:
            return False
        changes = self.interventions is not None and layer in self.interventions.layers()
        if layer not in self.capture and not changes:
            return False
        if ask:
            return True
        buf = np.empty(_GGML.ggml_nelements(tensor), dtype=np.float32)
        _GGML.ggml_backend_tensor_get(tensor, buf.ctypes.data, 0, buf.nbytes)
        rows = buf.reshape(-1, self.d_model)
        if changes and self.interventions is not None and self.interventions.apply(layer, rows):
            _GGML.ggml_backend_tensor_set(tensor, buf.ctypes.data, 0, buf.nbytes)
        if layer in self.capture:
            self.last_rows[layer] = rows[-1]
            if self.all_rows:
                self.rows[layer].append(rows)
        return True


class PythonFilter(EvalFilter):
    native = False


class NativeFilter(EvalFilter):
    native = True

    def __init__(self, d_model: int, n_layers: int):
        super().__init__(d_model, n_layers)
        assert _NATIVE is not None
        self.state = _FilterState()
        self.state.get_name = ctypes.cast(_GGML.ggml_get_name, ctypes.c_void_p).value
        self.state.nelements = ctypes.cast(_GGML.ggml_nelements, ctypes.c_void_p).value
        self.state.tensor_get = ctypes.cast(_GGML.ggml_backend_tensor_get, ctypes.c_void_p).value
        self.state.slow_path = ctypes.cast(self._py_callback, ctypes.c_void_p).value
        self.state.last_rows = self.last_rows.ctypes.data
        self.state.d_model = d_model
        self._entry = ctypes.cast(_NATIVE.pg_eval_filter, ctypes.c_void_p).value

    def _set_masks(self, wanted: set[int], slow: set[int]) -> None:
        for i, word in enumerate(_mask(wanted)):
            self.state.wanted[i] = word
        for i, word in enumerate(_mask(slow)):
            self.state.slow[i] = word

    def install(self, params: llama_cpp.llama_context_params) -> None:
        params.cb_eval = ctypes.cast(self._entry, llama_cpp.ggml_backend_sched_eval_callback)
        params.cb_eval_user_data = ctypes.cast(ctypes.pointer(self.state), ctypes.c_void_p)

    @property
    def ask_calls(self) -> int:
        return int(self.state.calls)


def make_filter(d_model: int, n_layers: int, *, native: bool | None = None) -> EvalFilter:
    """The C filter when it was built (or ``native=True`` demands it), else the Python one."""
    if native is None:
        native = _NATIVE is not None
    if native and _NATIVE is None:
        raise RuntimeError("the C eval filter (playground._evalfilter) was not built; reinstall with a C compiler")
    return NativeFilter(d_model, n_layers) if native else PythonFilter(d_model, n_layers)
