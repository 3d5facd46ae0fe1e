#!/usr/bin/env bash
# Build llama-cpp-python with a fixed x86-64 instruction set and install it into the venv.
#
# Why: a default build compiles for the build machine's own CPU (-march=native), so an Intel CPU with AMX and
# an AMD CPU without it run different kernels and get differently rounded numbers (different greedy replies,
# different extraction results). This build targets AVX2 + FMA + F16C (every x86-64 CPU since ~2015), with
# AVX-512 and AMX off, so every machine runs the same kernels. It also avoids llama.cpp 0.3.16's AMX
# micro-batch bug. Measured cost and the numbers behind it: docs/FINDINGS.md, "Numerics across CPUs".
#
# PLAYGROUND_LLAMA_CMAKE_ARGS replaces the flags (e.g. "-DGGML_NATIVE=ON" for a build tuned to this CPU: a
# little faster on AVX-512 machines, but its numbers are its own; the backend then says so in notices).
# The wheel is kept in the user cache, keyed by version, flags and compiler, so a rebuilt venv reuses it.
set -euo pipefail
PY=${1:-.venv/bin/python}
VERSION=0.3.16
PORTABLE="-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
-DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF \
-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
FLAGS=${PLAYGROUND_LLAMA_CMAKE_ARGS:-$PORTABLE}
TAG=$(printf '%s|%s|%s' "$VERSION" "$FLAGS" "$(cc --version | head -1)" | sha256sum | cut -c1-16)
WHEELS=${XDG_CACHE_HOME:-$HOME/.cache}/persona-playground/wheels/$TAG
if ! ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl >/dev/null 2>&1; then
    echo "building llama-cpp-python $VERSION ($FLAGS); about 5 minutes on 2 cores, once"
    rm -rf "$WHEELS.tmp"
    # --no-cache-dir: pip's own wheel cache ignores CMAKE_ARGS and could hand back a -march=native build.
    CMAKE_ARGS="$FLAGS" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
        "$PY" -m pip wheel --quiet --no-deps --no-cache-dir -w "$WHEELS.tmp" "llama-cpp-python==$VERSION"
    rm -rf "$WHEELS" && mv "$WHEELS.tmp" "$WHEELS"
fi
WHEEL=$(ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl)
"$PY" -m pip install --quiet --no-deps --force-reinstall "$WHEEL"
"$PY" -m pip install --quiet "$WHEEL"  # its dependencies (nothing when they are there)
"$PY" -c "import llama_cpp; print('llama.cpp build:', llama_cpp.llama_print_system_info().decode().strip())"
