"""What the installed llama.cpp was built with, and the settings that follow from it.

The project builds llama-cpp-python with a fixed x86-64 instruction set (AVX2 + FMA + F16C, no AVX-512,
no AMX; see the Makefile), so Intel and AMD CPUs run the same kernels and get the same numbers. The
features are compile-time facts of the binary, reported by ``llama_print_system_info``.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import sys

import llama_cpp

# llama.cpp 0.3.16's AMX kernels (used on CPUs with AMX, for micro-batches of 32+ tokens with Q4/Q8 weights)
# give wrong results: on an Intel machine the logits of a 53-token prompt evaluated in one batch correlated
# only 0.88 with the same prompt evaluated token by token, and residual activations differed by 25-70%.
# Micro-batches of at most 31 tokens take the correct path. Only a build with AMX kernels needs this.
AMX_SAFE_UBATCH = 31
# Without AMX kernels (the portable AVX2 build): the default model's Q4_1 products take llama.cpp's per-row
# dot-product path at any batch size (its tiled sgemm has no Q4_1 kernel), so a ~540-token prompt took the same
# time with micro-batches of 31 to 512 tokens within noise (docs/FINDINGS.md, "Numerics across CPUs"). The
# smallest size is then the best: cache reuse aligns on micro-batch boundaries, so a chat turn re-evaluates
# at most this many already-cached tokens.
PORTABLE_UBATCH = 32


@llama_cpp.llama_log_callback
def _quiet_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    """llama.cpp logs to stderr even with verbose=False; keep only errors (PLAYGROUND_LLAMA_LOG=1: all)."""
    if level == 4 and os.environ.get("PLAYGROUND_LLAMA_LOG", "0") == "0":  # GGML_LOG_LEVEL_ERROR
        sys.stderr.write(text.decode("utf-8", errors="replace"))


llama_cpp.llama_log_set(_quiet_log, ctypes.c_void_p(0))  # for every model this process loads


@functools.cache
def system_info() -> str:
    """llama.cpp's own one-line description of the build (``CPU : SSE3 = 1 | AVX2 = 1 | ...``)."""
    raw = llama_cpp.llama_print_system_info()
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)


@functools.cache
def build_features() -> tuple[str, ...]:
    """The instruction-set features compiled into the CPU backend, e.g. ('AVX', 'AVX2', 'F16C', 'FMA')."""
    return tuple(sorted({m.group(1) for m in re.finditer(r"([A-Z0-9_]+) = 1", system_info())}))


def build_tag() -> str:
    """A short, stable name of the build for cache keys and reports."""
    return f"llama-cpp-python {llama_cpp.__version__} [{' '.join(build_features())}]"


def has_amx_kernels() -> bool:
    return any(f.startswith("AMX") for f in build_features())


def default_ubatch() -> int:
    """The micro-batch size for this build: the AMX workaround only where AMX kernels exist."""
    return AMX_SAFE_UBATCH if has_amx_kernels() else PORTABLE_UBATCH


# The features scripts/build_llama.sh compiles in (the x86-64 portable build).
PORTABLE_FEATURES = ("AVX", "AVX2", "BMI2", "F16C", "FMA", "SSE3", "SSSE3")
NON_PORTABLE_PREFIXES = ("AVX512", "AMX", "AVX_VNNI")


def is_portable_build() -> bool:
    """True for the project's portable x86-64 build (or any non-x86 build, where the question does not arise)."""
    features = build_features()
    if not any(f.startswith("AVX") or f.startswith("SSE") for f in features):
        return True
    return all(f in features for f in PORTABLE_FEATURES) and not any(
        f.startswith(NON_PORTABLE_PREFIXES) for f in features
    )
