"""Control-vector GGUF export for llama.cpp, and import of llama.cpp / repeng files as calibrated traits."""

from __future__ import annotations

import subprocess
import sys

import gguf
import numpy as np
import pytest

from playground.backends.sampling import Sampling
from playground.errors import PlaygroundError
from playground.prompt.chat_template import Message
from playground.steering.exchange import export_vector, import_vector
from playground.steering.probes import build_steering
from playground.steering.store import VectorStore
from playground.steering.vectors import TraitVector

from .conftest import REPO


def _write_repeng_style(path, directions: dict[int, np.ndarray]) -> None:
    """Write a control vector the way repeng's ControlVector.export_gguf does."""
    writer = gguf.GGUFWriter(str(path), "controlvector")
    writer.add_string("controlvector.model_hint", "llama")
    writer.add_uint32("controlvector.layer_count", len(directions))
    for layer, vec in directions.items():
        writer.add_tensor(f"direction.{layer}", vec.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_cli_export_reads_back_the_same_directions(tmp_path):
    out = tmp_path / "humorous.gguf"
    proc = subprocess.run(
        [sys.executable, "-m", "playground", "export-vector", "humorous", "--format", "gguf", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    original = VectorStore("smollm2-135m").get("humorous")
    back = TraitVector.from_gguf(out)
    assert set(back.directions) == set(original.directions) - {0}
    for layer, vec in back.directions.items():
        assert np.array_equal(vec, original.directions[layer])
    reader = gguf.GGUFReader(out)  # what llama.cpp's loader checks
    assert bytes(reader.fields["general.architecture"].parts[-1]).decode() == "controlvector"
    again = subprocess.run(
        [sys.executable, "-m", "playground", "export-vector", "humorous", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert again.returncode == 2 and "--force" in again.stderr


def test_imported_repeng_vector_is_calibrated_and_steers(real_backend, tmp_path):
    source = VectorStore("smollm2-135m").get("humorous")
    directions = {l: source.directions[l] * 0.5 for l in range(10, 22)}  # repeng spreads over many layers
    path = tmp_path / "funny.gguf"
    _write_repeng_style(path, directions)
    vec = import_vector(real_backend, path, "funny", progress=False)
    assert vec.trait == "funny" and vec.method == "imported_control_vector"
    assert vec.probe_layer in directions and vec.steer_layer in directions
    assert all(std > 0 for _, std in vec.calibration.values())
    steering = build_steering({"funny": 1.0}, {"funny": vec})
    prompt = real_backend.tokenize(real_backend.template.render([Message("user", "Tell me about your morning.")]))
    greedy = Sampling(temperature=0, max_tokens=24)
    plain = [s.token for s in real_backend.stream(prompt, greedy)]
    steered = [s.token for s in real_backend.stream(prompt, greedy, steering=steering)]
    assert steered != plain


def test_import_rejects_wrong_width_and_bad_files(real_backend, tmp_path):
    wide = tmp_path / "wide.gguf"
    _write_repeng_style(wide, {5: np.ones(1024, dtype=np.float32)})
    with pytest.raises(PlaygroundError, match="1024 dimensions"):
        import_vector(real_backend, wide, "wide", progress=False)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf")
    with pytest.raises(PlaygroundError, match="junk.gguf"):
        import_vector(real_backend, junk, "junk", progress=False)
    with pytest.raises(PlaygroundError, match="exists"):
        export_vector(VectorStore("smollm2-135m").get("evil"), junk)
