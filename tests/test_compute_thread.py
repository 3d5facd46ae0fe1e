"""All model computation runs on one thread (one OpenMP team per process; see compute_thread.py)."""

from __future__ import annotations

import threading

import pytest

from playground.backends.compute_thread import ComputeThread, compute_thread_ident, run_on_compute_thread


def test_jobs_run_on_one_thread_and_return_or_raise():
    worker = ComputeThread("test-compute")
    seen = {worker.run(threading.get_ident) for _ in range(3)}
    assert seen == {worker.ident} and worker.ident != threading.get_ident()
    with pytest.raises(ValueError, match="bad job"):
        worker.run(lambda: (_ for _ in ()).throw(ValueError("bad job")))
    assert worker.run(lambda: worker.run(lambda: 41) + 1) == 42  # a job may hand over again: runs inline


def test_callers_on_many_threads_are_served_in_turn():
    results: list[int] = []

    def call(i: int) -> None:
        results.append(run_on_compute_thread(lambda: i * i))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [i * i for i in range(8)]


@pytest.mark.model
def test_llama_cpp_decodes_only_on_the_compute_thread(real_backend, monkeypatch):
    import llama_cpp

    from playground.backends.sampling import Sampling

    callers: set[int] = set()
    real = llama_cpp.llama_decode

    def spy(*args):
        callers.add(threading.get_ident())
        return real(*args)

    monkeypatch.setattr(llama_cpp, "llama_decode", spy)
    prompt = real_backend.tokenize("Hello there, how are you?")

    def generate() -> None:
        list(real_backend.stream(prompt, Sampling(temperature=0, max_tokens=4)))
        real_backend.hidden_states(prompt, [3])
        real_backend.token_logprobs(prompt, 2)

    generate()  # from the main thread
    other = threading.Thread(target=generate)  # and from a UI-like reply thread
    other.start()
    other.join()
    assert callers == {compute_thread_ident()}
