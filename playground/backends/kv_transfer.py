"""Moving one sequence's keys and values from one llama.cpp context to another of the same model.

The llama.cpp backend evaluates prompts in a context without flash attention (its batched matrix products are
fastest for many tokens at once) and, where the start-up check found it faster on the running CPU
(decode_check.py), generates in a context with flash attention (fewer graph nodes per token: ~10% faster
decoding on Intel with AMX, ~10% slower on AMD Zen 3 after a long prompt). The two contexts store V
differently: without flash attention it is kept transposed (one row per embedding dimension), with it one row
per cell. ``llama_state_seq_get_data`` writes a sequence in the layout of its context and
``llama_state_seq_set_data`` refuses the other layout, so :func:`untranspose_values` rewrites the V part of
such a blob.

Blob layout written by llama.cpp 0.3.16 (``llama_kv_cache_unified::state_write``), all little-endian:

    u32 n_stream; then per stream: u32 cell_count; cell_count x (i32 pos, u32 n_seq_id, n_seq_id x i32 seq);
    u32 v_trans, u32 n_layer;
    n_layer x (i32 k_type, u64 k_row_bytes, cell_count x k_row_bytes);
    v_trans == 0: n_layer x (i32 v_type, u64 v_row_bytes, cell_count x v_row_bytes)
    v_trans == 1: n_layer x (i32 v_type, u32 v_element_bytes, u32 n_embd_v, n_embd_v x cell_count elements)
"""

from __future__ import annotations

import ctypes
import struct

import llama_cpp
import numpy as np

from ..errors import ModelError


def untranspose_values(blob: np.ndarray) -> None:
    """Rewrite a sequence state, in place, so that V is stored one row per cell (the flash-attention layout).

    ``blob`` is a writable uint8 array holding exactly one state; both layouts have the same size (a V
    header is 12 bytes either way). A blob already in that layout is left unchanged. Raises
    :class:`ModelError` on anything this module does not know (several streams, unexpected sizes) rather
    than handing llama.cpp a corrupt state.
    """
    at = 0

    def take(fmt: str) -> tuple[int, ...]:
        nonlocal at
        size = struct.calcsize(fmt)
        if at + size > blob.size:
            raise ModelError("llama.cpp sequence state ends early (unexpected layout)")
        values = struct.unpack_from(fmt, blob, at)
        at += size
        return values

    def skip(size: int) -> None:
        nonlocal at
        if at + size > blob.size:
            raise ModelError("llama.cpp sequence state ends early (unexpected layout)")
        at += size

    (n_stream,) = take("<I")
    if n_stream != 1:
        raise ModelError(f"can move keys/values of a single-stream cache only, this one has {n_stream}")
    (cells,) = take("<I")
    if cells == 0:
        return
    for _ in range(cells):
        _pos, n_seq = take("<iI")
        skip(4 * n_seq)
    flag_at = at
    v_trans, n_layer = take("<II")
    if v_trans == 0:
        return
    for _ in range(n_layer):
        _k_type, k_row = take("<iQ")
        skip(k_row * cells)
    headers = []
    for _ in range(n_layer):
        header_at = at
        v_type, element, n_embd = take("<iII")
        if element not in (1, 2, 4):
            raise ModelError(f"unexpected V element size {element} in llama.cpp sequence state")
        headers.append((header_at, v_type, element, n_embd))
        skip(element * n_embd * cells)
    if at != blob.size:
        raise ModelError(f"llama.cpp sequence state has {blob.size - at} unexpected trailing bytes")
    # Checked throughout: now rewrite.
    struct.pack_into("<I", blob, flag_at, 0)
    for header_at, v_type, element, n_embd in headers:
        struct.pack_into("<iQ", blob, header_at, v_type, element * n_embd)
        dtype = {1: np.uint8, 2: np.uint16, 4: np.uint32}[element]
        data = blob[header_at + 12 : header_at + 12 + element * n_embd * cells].view(dtype)
        columns = data.reshape(n_embd, cells).copy()
        data.reshape(cells, n_embd)[:] = columns.T


class SequenceCopier:
    """Copies sequence 0 between two contexts of one model through one reused buffer (~23 KB per token of
    context for the default model). A buffer above ``keep_bytes`` is let go after the copy, so a long
    conversation does not hold its size for the rest of the process."""

    def __init__(self, keep_bytes: int = 32 << 20) -> None:
        self._buffer = np.empty(0, dtype=np.uint8)
        self.keep_bytes = keep_bytes

    def copy(self, src: llama_cpp.llama_context_p, dst: llama_cpp.llama_context_p, seq: int = 0) -> int:
        """Replace sequence ``seq`` of ``dst`` with that of ``src`` (V rewritten for a flash-attention ``dst``);
        returns the number of bytes moved."""
        size = llama_cpp.llama_state_seq_get_size(src, seq)
        if self._buffer.size < size:
            self._buffer = np.empty(size, dtype=np.uint8)
        ptr = self._buffer.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))
        written = llama_cpp.llama_state_seq_get_data(src, ptr, size, seq)
        try:
            untranspose_values(self._buffer[:written])
            if llama_cpp.llama_state_seq_set_data(dst, ptr, written, seq) != written:
                raise ModelError("llama.cpp refused the keys/values handed over from the prompt context")
        finally:
            if self._buffer.nbytes > self.keep_bytes:
                self._buffer = np.empty(0, dtype=np.uint8)
        return written
