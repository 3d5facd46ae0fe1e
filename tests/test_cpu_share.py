"""llama.cpp's thread count follows the CPUs other processes leave free (issue 18: replies slowed 5x under one
busy core because llama.cpp's threads wait for each other at every operation)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from playground.backends.cpu_share import CpuShare, ThreadFitter, fitted_threads


@pytest.mark.parametrize(
    ("configured", "cpus", "others", "expected"),
    [(2, 2, 0.0, 2), (2, 2, 0.25, 2), (2, 2, 0.5, 1), (2, 2, 1.0, 1), (2, 2, 2.0, 1), (8, 8, 1.0, 7),
     (8, 8, 2.6, 5), (4, 8, 1.0, 4), (1, 2, 0.0, 1)],
)  # fmt: skip
def test_threads_leave_out_the_cpus_others_use(configured, cpus, others, expected):
    assert fitted_threads(configured, cpus, others) == expected


def test_a_process_spinning_one_core_is_seen_and_our_own_work_is_not():
    share = CpuShare(interval=0.4)
    if not share.available:
        pytest.fail("/proc/stat or /proc/self/stat unreadable on Linux")
    share.others_busy()
    end = time.monotonic() + 1.0
    while time.monotonic() < end:  # this process busy: not counted as others'
        pass
    own_only = share.others_busy()
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.3)
        loaded = share.others_busy()
    finally:
        spinner.kill()
        spinner.wait()
    assert loaded > 0.5 and loaded > own_only + 0.3, (own_only, loaded)
    if len(share.cpus) == 2:
        assert fitted_threads(2, 2, loaded) == 1


@pytest.mark.model
def test_the_backend_sets_the_fitted_count_on_its_context(real_backend):
    import llama_cpp

    ctx = real_backend.llm._ctx.ctx
    before = llama_cpp.llama_n_threads(ctx)
    try:
        assert ThreadFitter(1, adaptive=False).fit(ctx) == 1 and llama_cpp.llama_n_threads(ctx) == 1
        assert ThreadFitter(2, adaptive=False).fit(ctx) == 2 and llama_cpp.llama_n_threads(ctx) == 2
    finally:
        llama_cpp.llama_set_n_threads(ctx, before, before)
