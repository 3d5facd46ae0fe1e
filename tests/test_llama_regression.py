"""llama-cpp-python 0.3.36 segfaults on multi-token decodes on this CPU; the pinned version must not.

Run in a child process so a crash fails this test instead of killing the whole test run.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

SCRIPT = r"""
import numpy as np, llama_cpp
from playground.backends.model_source import embedded_gguf
llm = llama_cpp.Llama(str(embedded_gguf()), n_ctx=512, n_batch=512, logits_all=True, verbose=False)
tokens = llm.tokenize(b"The quick brown fox jumps over the lazy dog. " * 8)
assert len(tokens) > 64, len(tokens)
llm.eval(tokens)  # one multi-token batch
scores = np.asarray(llm.scores[: llm.n_tokens])
assert np.isfinite(scores).all()
# Correct batched decoding: in the repeated second half, each position predicts the next token.
half = len(tokens) // 2
pred = scores[half:-1].argmax(axis=1)
acc = float((pred == np.asarray(tokens[half + 1:])).mean())
print("OK", len(tokens), acc)
"""


def test_pinned_llama_cpp_version():
    assert version("llama-cpp-python") == "0.3.16"


def test_multi_token_decode_does_not_crash():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith("OK")
    assert float(line.split()[-1]) > 0.5, line  # a broken batch decode scores near 0
