"""The start-up check of the flash-attention generation path: verdicts, caching and the fallback."""

from __future__ import annotations

import json

import numpy as np
import pytest

from playground.backends.decode_check import (
    CheckCache,
    DecodeCheck,
    cache_key,
    compare_logits,
    cpu_model,
    within_tolerance,
)


def _check(passed: bool) -> DecodeCheck:
    return DecodeCheck(
        positions=100,
        top1_agreement=0.5 if not passed else 0.97,
        max_abs_diff=9.0,
        p99_abs_diff=8.0,
        mean_abs_diff=3.0,
        floor_top1_agreement=0.96,
        floor_mean_abs_diff=0.16,
        passed=passed,
        seconds=1.0,
        build="test",
        cpu="test cpu",
        reference_seconds=1.0,
        flash_seconds=0.9,
        flash_time_ratio=0.9,
    )


def test_statistics_of_two_logit_arrays():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 30)).astype(np.float32)
    b = a.copy()
    b[3, a[3].argmin()] += 20.0  # one position's least likely token becomes its most likely
    stats = compare_logits([a[:20], a[20:]], [b[:20], b[20:]])
    assert stats["positions"] == 50
    assert stats["top1_agreement"] == pytest.approx(49 / 50)
    assert stats["max_abs_diff"] == pytest.approx(20.0, abs=1e-5)
    assert stats["mean_abs_diff"] == pytest.approx(20.0 / (50 * 30), abs=1e-6)


def test_the_tolerance_is_relative_to_llama_cpps_own_rounding():
    floor = {"top1_agreement": 0.96, "mean_abs_diff": 0.16}
    assert within_tolerance({"top1_agreement": 0.95, "mean_abs_diff": 0.2}, floor)
    assert not within_tolerance({"top1_agreement": 0.85, "mean_abs_diff": 0.2}, floor)  # more forks than the floor
    assert not within_tolerance({"top1_agreement": 0.97, "mean_abs_diff": 0.5}, floor)  # logits further apart
    noisy = {"top1_agreement": 0.5, "mean_abs_diff": 3.0}
    assert not within_tolerance({"top1_agreement": 0.6, "mean_abs_diff": 3.0}, noisy)  # never below the minimum


def test_flash_attention_generates_only_where_it_agrees_and_is_faster():
    from dataclasses import replace

    from playground.backends.decode_check import FLASH_SPEED_MARGIN

    good = _check(True)
    assert good.generation_path == "flash"
    assert replace(good, flash_time_ratio=1.0).generation_path == "reference"  # as fast: not worth the hand-over
    assert replace(good, flash_time_ratio=FLASH_SPEED_MARGIN * 1.001).generation_path == "reference"
    assert replace(good, flash_time_ratio=0.5, passed=False).generation_path == "reference"  # fast but wrong
    assert "reference path" in replace(good, flash_time_ratio=1.2).summary()


def test_the_speed_verdict_is_a_median_of_paired_rounds():
    from playground.backends.decode_check import median_ratio

    # one round spoiled by a burst of load on the machine (the flash path's third) does not flip the verdict
    assert median_ratio([1.0, 1.0, 9.0, 1.0, 1.0], [1.2, 1.2, 1.2, 1.2, 1.2]) == pytest.approx(1 / 1.2)
    with pytest.raises(ValueError):
        median_ratio([1.0], [])


def test_verdicts_are_cached_on_disk_and_a_damaged_file_counts_as_missing(tmp_path):
    cache = CheckCache(tmp_path)
    cache.put("k1", _check(True))
    CheckCache._memory.clear()
    assert CheckCache(tmp_path).get("k1") == _check(True)
    (tmp_path / "decode-k2.json").write_text("{not json", encoding="utf-8")
    assert CheckCache(tmp_path).get("k2") is None
    (tmp_path / "decode-k3.json").write_text(json.dumps({"positions": 1}), encoding="utf-8")
    assert CheckCache(tmp_path).get("k3") is None


def test_the_key_changes_with_the_build_and_the_cpu(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + bytes(100))
    key = cache_key(model, "build A", "cpu A", 2)
    assert key == cache_key(model, "build A", "cpu A", 2)
    assert len({key, cache_key(model, "build B", "cpu A", 2), cache_key(model, "build A", "cpu B", 2)}) == 3
    assert cpu_model()


@pytest.mark.model
def test_the_check_runs_at_start_up_and_passes_on_this_machine(real_backend):
    check = real_backend.decode_check
    assert check is not None and check.positions > 100
    assert check.passed, check.summary()
    assert check.reference_seconds > 0 and check.flash_seconds > 0
    assert real_backend._hand_over == check.flash_faster  # the faster of two paths that agree
    assert not any("Flash-attention" in n for n in real_backend.notices)


@pytest.mark.model
def test_a_failed_check_falls_back_to_the_reference_path_and_says_so(real_backend, tmp_path):
    """A verdict of 'failed' for this CPU and build (as another CPU's kernels might give) makes the backend
    generate on the reference path, and every reply carries the notice."""
    from playground.backends import llama_cpp as lc
    from playground.backends.llama_build import build_tag
    from playground.backends.llama_paths import STARTUP_TEXTS
    from playground.chat.session import Playground

    key = cache_key(real_backend.source.path, build_tag(), cpu_model(), STARTUP_TEXTS)
    CheckCache._memory.pop(key, None)
    (tmp_path / f"decode-{key}.json").write_text(json.dumps(_check(False).to_json()), encoding="utf-8")
    backend = lc.LlamaCppBackend(real_backend.source, check_cache=tmp_path)
    try:
        assert backend.decode_check == _check(False)
        assert backend._hand_over is False
        result = Playground(loaded_backend=backend).session("assistant").send("Hi!", max_tokens=4, temperature=0)
        assert any("reference path" in n for n in result.notices), result.notices
    finally:
        CheckCache._memory.pop(key, None)
        backend.close()
