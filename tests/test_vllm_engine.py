"""The vLLM engine (issue 21) on the real default model, through vLLM's CPU build in .venv/engines/vllm.

One engine serves the whole module (starting it takes ~10-15 s). What must hold on any machine: a request's
steering reaches only its own reply when many run in one batch; probe readouts agree with the transformers
backend on the same text; the chat object is the same as on the other backends; a guard cap acts on the rows
of its own request; a closed stream frees its place in the batch.
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from playground.backends import load_backend
from playground.backends.base import Intervention, Interventions, Steering
from playground.backends.sampling import Sampling
from playground.chat.session import Playground
from playground.errors import ModelError
from playground.evals.bench.load import MIX, run_clients
from playground.guard.policy import Policy
from playground.prompt.chat_template import Message
from playground.steering.probes import ProbeSet
from playground.steering.store import VectorStore

pytestmark = pytest.mark.model

TEXT = "Tell me about the sea, and what sailors feared most on long voyages."


@pytest.fixture(scope="module")
def engine():
    backend = load_backend(None, backend="vllm")
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def pg(engine):
    return Playground(loaded_backend=engine)


def _prompt(backend, message: str = TEXT) -> list[int]:
    return backend.tokenize(backend.template.render([Message("user", message)]))


def test_readouts_agree_with_the_transformers_backend(engine):
    hf = load_backend(None, backend="transformers")
    probes = ProbeSet(VectorStore(engine.model_id).all())
    prompt = _prompt(engine)
    reply = [s.token for s in engine.stream(prompt, Sampling(temperature=0, max_tokens=48, repeat_penalty=1.0))]
    assert len(reply) >= 20
    tokens = prompt + reply
    ours = probes.score_rows(engine.hidden_states(tokens, probes.layers, start=len(prompt) - 1))
    theirs = probes.score_rows(hf.hidden_states(tokens, probes.layers, start=len(prompt) - 1))
    for trait in ours:
        r = float(np.corrcoef(ours[trait], theirs[trait])[0, 1])
        assert r >= 0.95, (trait, r)
    # the same greedy text, and the same log-probabilities within float32 rounding
    hf_reply = [s.token for s in hf.stream(prompt, Sampling(temperature=0, max_tokens=48, repeat_penalty=1.0))]
    assert hf_reply[:10] == reply[:10]  # (a near-tie later may break differently: two engines, other kernels)
    assert np.max(np.abs(engine.token_logprobs(tokens, len(prompt)) - hf.token_logprobs(tokens, len(prompt)))) < 0.01


def _chat(pg, index: int) -> tuple[str, dict[str, float]]:
    persona, steering, message = MIX[index % len(MIX)]
    strength = {k: v * (1 + index // len(MIX)) / 2 for k, v in steering.items()}  # 16 distinct settings
    session = pg.session(persona)
    session.policy = Policy(name="none")  # readouts and steering only: no guard baselines to measure first
    result = session.send(message, steering=strength or None, max_tokens=16, temperature=0, record=False)
    return result.reply, {t: p["mean"] for t, p in result.probes.items()}


def test_sixteen_concurrent_chats_each_get_only_their_own_steering(pg):
    alone = [_chat(pg, i) for i in range(16)]
    together: list = [None] * 16

    def run(i: int) -> None:
        together[i] = _chat(pg, i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({reply for reply, _ in alone}) >= 12  # different personas and steering give different replies
    same = sum(a[0] == b[0] for a, b in zip(alone, together, strict=True))
    # float32 on CPU: a batch can change rounding, which may flip a near-tie late in a reply; the readouts of
    # every reply that came out the same must match within rounding
    print(f"{same}/16 replies identical alone and in one batch")
    assert same >= 14, [(a[0], b[0]) for a, b in zip(alone, together, strict=True) if a[0] != b[0]]
    gaps = [max(abs(a[1][t] - b[1][t]) for t in a[1]) for a, b in zip(alone, together, strict=True) if a[0] == b[0]]
    print(f"largest readout-mean difference, alone vs batched: {max(gaps):.2e}")
    assert max(gaps) < 0.02


def test_steering_reaches_its_request_and_not_its_neighbour(engine):
    prompt = _prompt(engine)
    rng = np.random.default_rng(7)
    push = Steering({10: rng.normal(size=engine.d_model).astype(np.float32) * 6})
    results: dict[str, list[int]] = {}

    def run(name: str, steering: Steering | None) -> None:
        sampling = Sampling(temperature=0, max_tokens=16, repeat_penalty=1.0)
        results[name] = [s.token for s in engine.stream(prompt, sampling, steering=steering)]

    plain_alone = [s.token for s in engine.stream(prompt, Sampling(temperature=0, max_tokens=16, repeat_penalty=1.0))]
    threads = [threading.Thread(target=run, args=("plain", None)), threading.Thread(target=run, args=("pushed", push))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # the unsteered request in the batch writes what it writes alone (its opening: a batch may change rounding on
    # another CPU, never by a vector's worth), and the steered one does not
    assert results["plain"][:8] == plain_alone[:8]
    assert results["pushed"][:8] != plain_alone[:8]


def test_a_cap_added_mid_reply_acts_on_the_following_rows(engine, pg):
    prompt = _prompt(engine)
    probe = pg.probes.readers["persona_drift"]
    unit = (probe.direction / np.linalg.norm(probe.direction)).astype(np.float32)
    interventions = Interventions()
    sampling = Sampling(temperature=0, max_tokens=24, repeat_penalty=1.0)
    projections = []
    for i, step in enumerate(engine.stream(prompt, sampling, capture=[probe.layer], interventions=interventions)):
        projections.append(float(step.hidden[probe.layer] @ unit))
        if i == 3:
            cap = float(np.min(projections)) - 5.0  # below every projection so far: the cap must bite
            interventions.add(Intervention(probe.layer, unit, "cap", cap))
    assert len(projections) == 24
    assert max(projections[:4]) > cap + 4
    # acts from the next step the worker runs after it arrives: at most two tokens late
    assert all(p <= cap + 1e-3 for p in projections[6:]), projections


def test_closing_a_stream_frees_its_place(engine):
    prompt = _prompt(engine)
    stream = engine.stream(prompt, Sampling(temperature=0, max_tokens=400, repeat_penalty=1.0))
    first = [next(stream).token for _ in range(3)]
    stream.close()
    assert len(first) == 3 and not engine.worker._queues
    again = list(engine.stream(prompt, Sampling(temperature=0, max_tokens=3, repeat_penalty=1.0)))
    assert [s.token for s in again] == first


def test_many_clients_through_the_load_runner(pg):
    found = run_clients(pg, 4, max_tokens=12)
    assert found["errors"] == 0 and found["tokens"] > 4
    assert found["tok_s"] > 0 and 0 < found["ttft_p50_s"] <= found["ttft_p95_s"]


def test_api_requests_are_written_together_on_the_vllm_engine(pg):
    import httpx

    from tests.test_openai_api import serving

    assert pg.generation_lock.capacity == engine_capacity(pg)
    marks: dict[int, tuple[float, float]] = {}

    def ask(base: str, i: int) -> None:
        persona, steering, message = MIX[i]
        body = {"model": persona, "messages": [{"role": "user", "content": message}], "max_tokens": 24,
                "temperature": 0, "stream": True, "steering": steering, "guard": False}  # fmt: skip
        first = None
        with httpx.stream("POST", f"{base}/chat/completions", json=body, timeout=120) as resp:
            assert resp.status_code == 200
            for line in resp.iter_lines():
                if first is None and '"content"' in line:
                    first = time.perf_counter()
        marks[i] = (first, time.perf_counter())

    with serving(pg) as base:
        threads = [threading.Thread(target=ask, args=(base, i)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(marks) == 4
    # batched, not taking turns: every request had its first token before any request had finished
    assert max(first for first, _ in marks.values()) < min(end for _, end in marks.values())


def engine_capacity(pg) -> int:
    return pg.backend.max_concurrent


def test_chat_json_on_the_vllm_engine_is_the_usual_object(engine, capsys):
    from playground.cli.main import main

    argv = ["chat", "--engine", "vllm", "--json", "--persona", "pirate", "--temperature", "0", "--max-tokens", "16",
            "--steer", "humorous=1", TEXT]  # fmt: skip
    assert main(argv) == 0  # the command's own code, in this process: it joins the module's engine
    assert load_backend(None, backend="vllm") is engine  # one engine per model in a process, not a second worker
    result = json.loads(capsys.readouterr().out)
    expected = {"persona", "model", "reply", "tokens", "steering", "probes", "guard", "notices", "timing",
                "finish_reason", "persona_map", "prompt_tokens"}  # fmt: skip
    assert expected <= set(result)
    assert result["model"] == "smollm2-135m" and result["steering"] == {"humorous": 1.0}
    assert result["reply"] and len(result["tokens"]) == len(result["probes"]["humorous"]["per_token"])
    assert any("vLLM engine" in n for n in result["notices"])


def test_a_worker_that_dies_fails_its_replies_clearly_and_is_replaced(engine):
    prompt = _prompt(engine)
    sampling = Sampling(temperature=0, max_tokens=8, repeat_penalty=1.0)
    before = [s.token for s in engine.stream(prompt, sampling)]
    stream = engine.stream(prompt, Sampling(temperature=0, max_tokens=400, repeat_penalty=1.0))
    next(stream)
    engine.worker.proc.kill()
    with pytest.raises(ModelError, match="vLLM worker stopped"):
        for _ in stream:
            pass
    assert [s.token for s in engine.stream(prompt, sampling)] == before  # a new worker, the same reply


def test_a_missing_vllm_environment_says_how_to_build_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PLAYGROUND_VLLM_PYTHON", str(tmp_path / "nowhere" / "python"))
    with pytest.raises(ModelError, match="make vllm"):
        load_backend(None, backend="vllm", n_ctx=2048)  # another context size: not the module's running engine

