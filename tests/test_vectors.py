"""TraitVector: arithmetic, readouts, safetensors+JSON files and llama.cpp control-vector GGUF."""

from __future__ import annotations

import json
import warnings

import gguf
import numpy as np
import pytest

from playground.steering.vectors import TraitVector

D = 16


def make(trait: str = "evil", layers: tuple[int, ...] = (3, 5), seed: int = 0, **kw) -> TraitVector:
    rng = np.random.default_rng(seed)
    return TraitVector({k: rng.standard_normal(D).astype(np.float32) for k in layers}, trait, "smollm2-135m", **kw)


# ---- arithmetic -------------------------------------------------------------------------------------


def test_arithmetic_identities():
    v = make(calibration={3: (0.5, 2.0)})
    w = v + v
    assert w.trait == "evil+evil"
    for k in v.layers:
        np.testing.assert_array_equal(w.directions[k], (2 * v).directions[k])
        np.testing.assert_array_equal((v - v).directions[k], np.zeros(D, np.float32))
        np.testing.assert_array_equal((-v).directions[k], -v.directions[k])
    assert (v * 2) / 2 == v
    assert 2 * v == v * 2
    assert (-v).trait == "-evil"
    assert all(x.dtype == np.float32 for x in (v * 3).directions.values())


def test_union_of_layers_and_names():
    a, b = make("evil", (3, 5), seed=1), make("humorous", (5, 7), seed=2)
    s, d = a + b, a - b
    assert s.layers == d.layers == [3, 5, 7]
    assert (s.trait, d.trait) == ("evil+humorous", "evil-humorous")
    np.testing.assert_array_equal(s.directions[3], a.directions[3])
    np.testing.assert_array_equal(s.directions[5], a.directions[5] + b.directions[5])
    np.testing.assert_array_equal(d.directions[7], -b.directions[7])
    assert (a - (a + b)).trait == "evil-(evil+humorous)"
    assert (-(a + b)).trait == "-(evil+humorous)"


def test_arithmetic_metadata_and_calibration():
    a = make(probe_layer=5, steer_layer=3, calibration={3: (1.0, 2.0)}, steer_scale={3: 4.0}, extra={"n": 1})
    b = make("humorous", seed=3, calibration={3: (0.0, 1.0)})
    s = a + b
    assert s.calibration == {}  # the sum points elsewhere: neutral statistics no longer apply
    assert (s.probe_layer, s.steer_layer, s.steer_scale, s.extra, s.method) == (5, 3, {3: 4.0}, {"n": 1}, "mean_diff")
    assert (a * 3).calibration == {3: (1.0, 2.0)}  # unit direction unchanged
    assert (-a).calibration == {3: (-1.0, 2.0)}
    assert (a * 0).calibration == {}
    x = np.random.default_rng(9).standard_normal((4, D))
    np.testing.assert_allclose((-a).calibrated(3, x), -a.calibrated(3, x), rtol=1e-6)


def test_mismatch_errors():
    a = make()
    other_width = TraitVector({3: np.ones(D + 1, np.float32)}, "x", a.model_id)
    other_model = TraitVector({3: np.ones(D, np.float32)}, "x", "gemma3-270m")
    with pytest.raises(ValueError, match="d_model"):
        a + other_width
    with pytest.raises(ValueError, match="different models"):
        a - other_model
    with pytest.raises(ValueError, match="d_model"):
        TraitVector({1: np.ones(3), 2: np.ones(4)}, "x", "m")
    with pytest.raises(ValueError, match="no directions"):
        TraitVector({}, "x", "m")
    with pytest.raises(ZeroDivisionError):
        a / 0
    with pytest.raises(TypeError):
        a * "2"  # type: ignore[operator]


# ---- readouts ---------------------------------------------------------------------------------------


def test_unit_and_norm():
    v = make()
    for k in v.layers:
        assert np.linalg.norm(v.unit(k)) == pytest.approx(1.0, abs=1e-6)
        assert v.norm(k) == pytest.approx(float(np.linalg.norm(v.directions[k])), rel=1e-6)
    assert v.d_model == D
    with pytest.raises(ValueError, match="norm"):
        (v - v).unit(3)
    with pytest.raises(KeyError, match="layer 4"):
        v.unit(4)


def test_project_and_calibrated():
    v = TraitVector({2: np.array([3.0, 4.0, 0.0], np.float32)}, "t", "m", calibration={2: (1.0, 0.5)})
    acts = np.array([[3.0, 4.0, 9.0], [0.0, 0.0, 1.0], [-6.0, -8.0, 0.0]])
    np.testing.assert_allclose(v.project(2, acts), [5.0, 0.0, -10.0], rtol=1e-6)
    assert v.project(2, acts[0]).shape == ()
    assert float(v.project(2, acts[0])) == pytest.approx(5.0)
    np.testing.assert_allclose(v.calibrated(2, acts), [8.0, -2.0, -22.0], rtol=1e-6)
    with pytest.raises(ValueError, match="activations must be"):
        v.project(2, np.ones((2, 4)))
    no_cal = TraitVector({2: np.ones(3)}, "t", "m")
    with pytest.raises(ValueError, match="no calibration for layer 2"):
        no_cal.calibrated(2, acts)


# ---- safetensors + JSON -----------------------------------------------------------------------------


def rich() -> TraitVector:
    return make(
        layers=(0, 4, 12),
        probe_layer=12,
        steer_layer=4,
        calibration={12: (0.25, 1.5), 4: (-0.1, 0.3)},
        steer_scale={4: 8.0},
        extra={"n_samples": 40, "auroc": {"4": 0.9, "12": 0.97}},
    )


def test_save_load_round_trip(tmp_path):
    v = rich()
    st, js = v.save(tmp_path / "evil.v2")
    assert (st.name, js.name) == ("evil.v2.safetensors", "evil.v2.json")
    for p in (tmp_path / "evil.v2", st, js, str(st)):
        w = TraitVector.load(p)
        assert w == v
        assert w.calibration == {4: (-0.1, 0.3), 12: (0.25, 1.5)}
        assert all(isinstance(k, int) for k in (*w.directions, *w.calibration, *w.steer_scale))
        assert all(isinstance(c, tuple) for c in w.calibration.values())
        for k in v.layers:
            assert w.directions[k].dtype == np.float32
            assert w.directions[k].tobytes() == v.directions[k].tobytes()
    meta = json.loads(js.read_text())
    assert meta["format_version"] == 1 and meta["layers"] == [0, 4, 12] and meta["d_model"] == D


def test_atomic_write_leaves_no_temp_files(tmp_path, monkeypatch):
    v = rich()
    v.save(tmp_path / "evil")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.json", "evil.safetensors"]
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def crash(*a, **k):
        raise OSError("disk gone")

    monkeypatch.setattr("playground.steering.vectors.os.replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        (v * 2).save(tmp_path / "evil")
    with pytest.raises(OSError, match="disk gone"):
        v.to_gguf(tmp_path / "evil.gguf", layers=[4])
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        TraitVector.load(tmp_path / "nothing")
    _, js = make().save(tmp_path / "v")
    meta = json.loads(js.read_text())
    js.write_text(json.dumps({**meta, "format_version": 2}))
    with pytest.raises(ValueError, match=r"v\.json.*format_version 2"):
        TraitVector.load(tmp_path / "v")
    js.write_text("{not json")
    with pytest.raises(ValueError, match=r"v\.json.*not valid JSON"):
        TraitVector.load(tmp_path / "v")
    js.write_text(json.dumps({**meta, "layers": [1, 2]}))
    with pytest.raises(ValueError, match="holds layers"):
        TraitVector.load(tmp_path / "v")
    (tmp_path / "v.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="v.safetensors"):
        TraitVector.load(tmp_path / "v.json")


# ---- control-vector GGUF ----------------------------------------------------------------------------


def test_gguf_round_trip_and_llama_cpp_view(tmp_path):
    v = rich()
    path = tmp_path / "evil.gguf"
    with pytest.warns(UserWarning, match="layer 0"):
        v.to_gguf(path, scale=2.0)
    w = TraitVector.from_gguf(path)
    assert (w.trait, w.method, w.model_id, w.layers) == ("evil", "imported", "unknown", [4, 12])
    assert w.extra["model_hint"] == v.model_id
    for k in w.layers:
        np.testing.assert_array_equal(w.directions[k], v.directions[k] * np.float32(2.0))

    # What llama.cpp's common_control_vector_load_one checks: every tensor is direction.<il>, il >= 1,
    # F32, 1-D, all the same n_embd. repeng additionally reads the architecture and model hint.
    r = gguf.GGUFReader(path)
    arch = r.get_field("general.architecture")
    assert bytes(arch.parts[arch.data[0]]).decode() == "controlvector"
    count = r.get_field("controlvector.layer_count")
    assert count.types == [gguf.GGUFValueType.UINT32] and int(count.parts[count.data[0]][0]) == 2
    assert sorted(t.name for t in r.tensors) == ["direction.12", "direction.4"]
    for t in r.tensors:
        assert t.tensor_type == gguf.GGMLQuantizationType.F32
        assert list(t.shape) == [D] and t.n_elements == D
    assert not [p for p in tmp_path.iterdir() if p.name != "evil.gguf"]


def test_gguf_layer_selection_and_layer_zero(tmp_path):
    v = rich()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v.to_gguf(tmp_path / "a.gguf", layers=[12])
    assert TraitVector.from_gguf(tmp_path / "a.gguf", trait="x", model_id="m").layers == [12]
    with pytest.raises(ValueError, match="layer 0"):
        v.to_gguf(tmp_path / "b.gguf", layers=[0])
    with pytest.raises(KeyError, match="layer 7"):
        v.to_gguf(tmp_path / "c.gguf", layers=[7])


def test_from_gguf_rejects_model_files(tmp_path):
    path = tmp_path / "model.gguf"
    wr = gguf.GGUFWriter(path, arch="llama")
    wr.add_tensor("token_embd.weight", np.ones((4, D), np.float32))
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    with pytest.raises(ValueError, match=r"model\.gguf.*'llama'.*not 'controlvector'"):
        TraitVector.from_gguf(path)
    with pytest.raises(FileNotFoundError, match="missing.gguf"):
        TraitVector.from_gguf(tmp_path / "missing.gguf")
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf at all")
    with pytest.raises(ValueError, match="junk.gguf"):
        TraitVector.from_gguf(tmp_path / "junk.gguf")
