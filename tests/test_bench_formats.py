"""The weight-format benchmark's pieces on the real default model (the timings themselves live in the bench)."""

from __future__ import annotations

from pathlib import Path

import pytest

from playground.backends.decode_check import compare_logits
from playground.evals.bench.formats import reencode, teacher_forced_logits


@pytest.mark.model
def test_a_q8_0_re_encoding_keeps_q4_1_predictions_and_q4_0_changes_more(real_backend, tmp_path):
    source = Path(real_backend.source.path)
    assert reencode(source, "Q4_1", tmp_path) == source  # the shipped file itself, not a copy
    q8 = reencode(source, "Q8_0", tmp_path)
    q4_0 = reencode(source, "Q4_0", tmp_path)
    assert q8.stat().st_size > source.stat().st_size > q4_0.stat().st_size
    reference = teacher_forced_logits(str(source), 2)
    near = compare_logits(reference, teacher_forced_logits(str(q8), 2))
    far = compare_logits(reference, teacher_forced_logits(str(q4_0), 2))
    assert near["positions"] > 500
    assert near["top1_agreement"] >= 0.9, near
    assert far["mean_abs_diff"] > 2 * near["mean_abs_diff"], (near, far)  # re-quantising is another model
