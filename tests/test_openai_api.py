"""The OpenAI-compatible API (issue 20) on the real default model: the official ``openai`` client, streamed and
not, with the playground's fields in ``extra_body``; raw HTTP for every error; five concurrent clients whose
replies equal the same requests made alone; a client that hangs up stops its reply."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from playground.api.completions import Completions
from playground.api.fair_queue import Cancelled, FairQueue
from playground.api.server import build_api

pytestmark = pytest.mark.model

KEY = "sk-test-key"


@contextlib.contextmanager
def serving(pg, api_key: str | None = None, queue: FairQueue | None = None, app=None) -> Iterator[str]:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = app or build_api(Completions(pg, queue), api_key=api_key)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def api(playground) -> Iterator[str]:
    with serving(playground, api_key=KEY) as base:
        yield base


@pytest.fixture(scope="module")
def client(api):
    from openai import OpenAI

    return OpenAI(base_url=api, api_key=KEY, max_retries=0)


def test_models_lists_the_model_and_every_persona(client, playground):
    ids = [m.id for m in client.models.list().data]
    assert ids[0] == playground.backend.model_id
    assert set(ids[1:]) == set(playground.catalog.persona_files()) and "pirate" in ids


def test_a_completion_with_steering_is_the_reply_the_library_gives(client, playground):
    messages = [{"role": "user", "content": "What is your favourite food?"}]
    resp = client.chat.completions.create(
        model="pirate", messages=messages, max_tokens=24, temperature=0, extra_body={"steering": {"humorous": 1}}
    )
    extra = resp.model_extra["playground"]
    direct = playground.chat("pirate", "What is your favourite food?", max_tokens=24, temperature=0,
                             steering={"humorous": 1.0})  # fmt: skip
    assert resp.choices[0].message.content == direct.reply and direct.reply.strip()
    assert extra["steering"] == {"humorous": 1.0} and extra["persona"] == "pirate"
    assert set(extra["probes"]) == set(playground.vectors.names())
    assert resp.usage.completion_tokens == len(direct.tokens) and resp.choices[0].finish_reason in ("stop", "length")


def test_a_stream_carries_each_tokens_readouts_and_ends_with_the_json_object(client, playground):
    stream = client.chat.completions.create(
        model=playground.backend.model_id,
        messages=[{"role": "system", "content": "You are Captain Wren, a cheerful airship pilot."},
                  {"role": "user", "content": "Where are we flying today?"}],
        max_tokens=20, temperature=0, stream=True, stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    tokens = [c for c in chunks if c.choices and c.choices[0].delta.content]
    final = next(c for c in chunks if c.choices and c.choices[0].finish_reason)
    usage = chunks[-1]
    assert tokens and tokens[0].choices[0].delta.role == "assistant"
    for c in tokens:
        assert set(c.model_extra["probes"]) == set(playground.vectors.names())
    text = "".join(c.choices[0].delta.content for c in tokens)
    result = final.model_extra["playground"]
    assert text == result["reply"] and len(tokens) == len(result["tokens"])
    assert result["guard"]["policy"] == "default"  # a front end's own character card is still guarded
    first = tokens[0].model_extra["probes"]
    assert first == pytest.approx({t: v["per_token"][0] for t, v in result["probes"].items()}, abs=1e-3)
    assert usage.usage.completion_tokens == len(tokens) and usage.choices == []


def test_a_trailing_assistant_message_is_continued(client):
    resp = client.chat.completions.create(
        model="assistant", max_tokens=8, temperature=0,
        messages=[{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "My favourite is"}],
    )  # fmt: skip
    extra = resp.model_extra["playground"]
    assert extra["prefix"] == "My favourite is" and extra["reply"].startswith("My favourite is")


def _post(api: str, body: object, key: str | None = KEY, raw: bytes | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(f"{api}/chat/completions", content=content, headers=headers, timeout=60)


HELLO = [{"role": "user", "content": "Hello"}]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"model": "pirate", "messages": HELLO, "persona": "pirat"}, 400, ["unknown persona 'pirat'", "pirate"]),
        ({"model": "gpt-4o", "messages": HELLO}, 404, ["no model 'gpt-4o'", "pirate"]),
        ({"model": "pirate", "messages": HELLO, "steering": {"humorous": 3}}, 400, ["outside -2..2"]),
        ({"model": "pirate", "messages": HELLO, "steering": {"humourous": 1}}, 400, ["unknown trait", "humorous"]),
        ({"model": "pirate", "messages": HELLO, "steering": {"humorous": "lots"}}, 400, ["must be a number"]),
        ({"model": "pirate", "messages": HELLO, "guard": "strict"}, 400, ["unknown guard policy", "default"]),
        ({"model": "pirate", "messages": HELLO, "n": 2}, 400, ["'n'"]),
        ({"model": "pirate", "messages": []}, 400, ["non-empty list"]),
        ({"model": "pirate", "messages": [{"role": "tool", "content": "x"}]}, 400, ["role 'tool'"]),
        ({"model": "pirate", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400, ["image_url"]),
        ({"model": "pirate", "messages": HELLO, "temperature": 7}, 400, ["'temperature'"]),
    ],
)
def test_bad_requests_get_openai_shaped_errors_with_the_right_status(api, body, status, words):
    resp = _post(api, body)
    error = resp.json()["error"]
    assert resp.status_code == status, error
    assert set(error) == {"message", "type", "param", "code"}
    for word in words:
        assert word in error["message"], error


def test_bad_json_and_a_missing_key_are_refused(api):
    resp = _post(api, None, raw=b'{"model": "pirate",\n "messages": [}')
    assert resp.status_code == 400 and "line 2 column" in resp.json()["error"]["message"]
    resp = _post(api, {"model": "pirate", "messages": HELLO}, key=None)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{api}/models", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_a_full_queue_answers_429_and_a_client_that_hangs_up_stops_its_reply(playground):
    long = {"model": "assistant", "messages": [{"role": "user", "content": "Tell me a very long story."}],
            "max_tokens": 400, "temperature": 0, "stream": True}  # fmt: skip
    with serving(playground, queue=FairQueue(max_waiting=0)) as base:
        with httpx.stream("POST", f"{base}/chat/completions", json=long, timeout=60) as resp:
            lines = resp.iter_lines()
            got = [next(lines) for _ in range(6)]  # the reply is being written now
            assert any(line.startswith("data: ") for line in got)
            busy = _post(base, {"model": "pirate", "messages": HELLO}, key=None)
            assert busy.status_code == 429 and busy.json()["error"]["type"] == "rate_limit_error"
        hung_up = time.perf_counter()
        assert playground.generation_lock.acquire(timeout=5)  # 400 tokens would take several seconds more
        freed = time.perf_counter() - hung_up
        playground.generation_lock.release()
        assert freed < 2.0, freed
        after = _post(base, {"model": "pirate", "messages": HELLO, "max_tokens": 4}, key=None)
        assert after.status_code == 200  # the place in the queue was given back


def test_five_concurrent_clients_get_the_replies_they_get_alone(client):
    asks = [("pirate", {"humorous": 1}), ("robot", {}), ("villain", {"evil": -1}), ("bard", {"optimistic": 1}),
            ("assistant", {"impolite": 1})]  # fmt: skip

    def ask(persona: str, steering: dict) -> tuple[str, dict]:
        resp = client.chat.completions.create(
            model=persona, messages=[{"role": "user", "content": "Describe your morning."}], max_tokens=20,
            temperature=0, extra_body={"steering": steering},
        )  # fmt: skip
        return resp.choices[0].message.content, resp.model_extra["playground"]["probes"]

    alone = [ask(*a) for a in asks]
    together: list = [None] * len(asks)
    threads = [threading.Thread(target=lambda i=i: together.__setitem__(i, ask(*asks[i]))) for i in range(len(asks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [r for r, _ in together] == [r for r, _ in alone]
    for (_, pa), (_, pb) in zip(alone, together, strict=True):
        assert {t: v["mean"] for t, v in pa.items()} == pytest.approx({t: v["mean"] for t, v in pb.items()}, abs=1e-6)
    assert len({r for r, _ in alone}) == len(asks)  # different personas and steering: different replies


def test_the_fair_queue_serves_in_arrival_order_and_gives_up_a_cancelled_place():
    queue = FairQueue(max_waiting=2)
    first, second, third = queue.ticket(), queue.ticket(), queue.ticket()
    with pytest.raises(Exception, match="too many requests"):
        queue.ticket()
    order: list[str] = []
    never = threading.Event()
    gone = threading.Event()
    gone.set()
    with pytest.raises(Cancelled):
        second.wait(gone)  # its client went away: its place is given up
    done = threading.Thread(target=lambda: (third.wait(never), order.append("third"), third.release()))
    done.start()
    first.wait(never)
    order.append("first")
    first.release()
    done.join(5)
    assert order == ["first", "third"] and queue.waiting() == 0


def test_a_queue_with_several_slots_lets_that_many_write_at_once():
    queue = FairQueue(max_waiting=1, slots=lambda: 2)  # a batching engine's capacity, read on first use
    never = threading.Event()
    first, second, third = queue.ticket(), queue.ticket(), queue.ticket()
    first.wait(never)
    second.wait(never)  # both hold a slot: neither waits
    assert queue.waiting() == 1 and queue.slots == 2
    with pytest.raises(Exception, match="1 queued, 2 writing"):
        queue.ticket()
    second.release()  # a freed slot goes to the next in line
    third.wait(never)
    assert queue.waiting() == 0


def test_the_generation_gate_admits_as_many_replies_as_the_backend_batches():
    from playground.chat.generation_gate import GenerationGate

    one, three = GenerationGate(lambda: 1), GenerationGate(lambda: 3)
    assert one.acquire() and not one.acquire(blocking=False) and one.locked()
    assert all(three.acquire(blocking=False) for _ in range(3)) and not three.acquire(blocking=False)
    three.release()
    assert three.acquire(timeout=1) and three.capacity == 3
    for gate, held in ((one, 1), (three, 3)):
        for _ in range(held):
            gate.release()
        assert not gate.locked()


def test_serve_api_mounts_the_web_ui_beside_the_api_on_one_port(playground):
    from playground.cli.serve import api_app
    from playground.ui.app import build_ui

    demo = build_ui(playground, "assistant")
    demo.queue(default_concurrency_limit=2)
    with serving(playground, app=api_app(playground, demo, api_key=KEY)) as base:
        root = base.removesuffix("/v1")
        page = httpx.get(f"{root}/", timeout=30)
        assert page.status_code == 200 and "gradio" in page.text.lower()
        config = httpx.get(f"{root}/config", timeout=30).json()
        assert any(c.get("props", {}).get("elem_id") == "model-notices" for c in config["components"])
        models = httpx.get(f"{base}/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
        assert models.status_code == 200 and "pirate" in [m["id"] for m in models.json()["data"]]
        assert httpx.get(f"{base}/models", timeout=30).status_code == 401  # the key guards the API, not the page
