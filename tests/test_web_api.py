"""The Gradio app through gradio_client: api_name="chat" returns the chat --json object, concurrent sessions
keep their own persona, steering and history, and bad input is an error, never a crash."""

from __future__ import annotations

import json
import re
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest

from playground.chat.session import Playground
from playground.definitions.personas import SHIPPED_PERSONAS, Catalog
from playground.errors import PlaygroundError
from playground.ui.api import parse_steer_json
from playground.ui.chat_state import ChatState

from .conftest import FIXTURES, running_ui

pytestmark = pytest.mark.model

MAX_TOKENS = 20
# Five sessions at once, each with its own persona and steering (temperature 0: replies are reproducible).
CONFIGS = [
    ("pirate", {"humorous": 1.0}),
    ("robot", {}),
    ("villain", {"evil": -1.0}),
    ("assistant", {"optimistic": 0.8}),
    ("stoic", {"humorous": -0.6, "apathetic": 0.5}),
]
MESSAGE = "What is the best way to start the day?"


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("personas")
    shutil.copy(FIXTURES / "bad" / "wrong_types.yaml", folder / "broken.yaml")  # a bad persona file on disk
    (folder / "nul.yaml").write_bytes(b"name: a\x00b\ndescription: x\nsystem_prompt: y\n")  # unreadable YAML
    return folder


@pytest.fixture(scope="module")
def pg(real_backend, user_dir):
    return Playground(loaded_backend=real_backend, catalog=Catalog([SHIPPED_PERSONAS, user_dir]))


@pytest.fixture(scope="module")
def server(pg):
    with running_ui(pg) as address:
        yield address


def _client(url):
    from gradio_client import Client

    return Client(url, verbose=False)


@pytest.fixture(scope="module")
def client(server):
    return _client(server)


def test_chat_api_returns_contract(client):
    out = client.predict("Hello!", "assistant", "", api_name="/chat")
    assert set(out) >= {"persona", "model", "reply", "tokens", "steering", "probes", "guard"}
    assert out["persona"] == "assistant" and out["reply"] == "".join(out["tokens"])
    assert set(out["guard"]) >= {"events", "blocked"}


def test_chat_api_unknown_persona_is_an_error_and_server_survives(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="did you mean 'pirate'"):
        client.predict("Hello!", "pirat", "", api_name="/chat")
    with pytest.raises(AppError, match="steer_json"):
        client.predict("Hello!", "pirate", "{oops", api_name="/chat")
    with pytest.raises(AppError, match="not a path"):
        client.predict("Hello!", str(SHIPPED_PERSONAS / "pirate.yaml"), "", api_name="/chat")
    with pytest.raises(AppError, match="outside -2..2"):
        client.predict("Hello!", "pirate", '{"evil": 7}', api_name="/chat")
    assert client.predict("Hi", "pirate", "", 0, None, 8, api_name="/chat")["persona"] == "pirate"


def test_parse_steer_json():
    assert parse_steer_json("") == {}
    assert parse_steer_json('{"humorous": 1}') == {"humorous": 1.0}
    for bad in ("[1]", '{"evil": "lots"}', "{oops", '{"evil": NaN}'):
        with pytest.raises(PlaygroundError):
            parse_steer_json(bad)


def test_concurrent_api_calls_each_get_their_own_settings(server, pg):
    expected = [
        pg.session(p).send(MESSAGE, steering=s or None, temperature=0, max_tokens=MAX_TOKENS).to_dict()
        for p, s in CONFIGS
    ]
    clients = [_client(server) for _ in CONFIGS]

    def call(i: int) -> dict:
        persona, steer = CONFIGS[i]
        return clients[i].predict(MESSAGE, persona, json.dumps(steer), 0, None, MAX_TOKENS, api_name="/chat")

    with ThreadPoolExecutor(len(CONFIGS)) as pool:
        results = list(pool.map(call, range(len(CONFIGS))))
    for (persona, steer), want, got in zip(CONFIGS, expected, results, strict=True):
        assert got["persona"] == persona and got["steering"] == steer
        assert got["reply"] == want["reply"], persona
    assert len({r["reply"] for r in results}) > 1  # the settings made a difference


def _send_args(pg: Playground, message: str, steer: dict[str, float]) -> list:
    # /send inputs (the session State is kept by the server): message, heatmap trait, temperature,
    # max tokens, seed, then one slider per trait.
    traits = pg.vectors.names()
    return [message, traits[0], 0, MAX_TOKENS, -1, *[steer.get(t, 0.0) for t in traits]]


def _text(message: dict) -> str:
    content = message["content"]  # Gradio 6: a list of {"type": "text", "text": ...} parts
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def _last_reply(chat: list[dict]) -> str:
    replies = [m for m in chat if m["role"] == "assistant" and not (m.get("metadata") or {}).get("title")]
    return re.sub(r" … \*⟨cut at \d+ tokens⟩\*$", "", _text(replies[-1]))  # the chat marks a cut at max tokens


def test_concurrent_ui_sessions_keep_their_own_persona_steering_and_history(server, pg):
    """Four browser-like sessions (separate session state) chat two turns at the same time."""
    configs = CONFIGS[:4]
    turns = ["Hello! Who are you?", "Tell me one thing you like."]
    expected = []
    for persona, steer in configs:
        state = ChatState(pg, persona)
        full = {t: steer.get(t, 0.0) for t in pg.vectors.names()}
        # Gradio 6's Chatbot trims the text of every message it shows (components/chatbot.py splits content
        # into stripped segments); the history the server keeps is untrimmed, so turn 2 still has to match.
        expected.append([state.send(m, full, temperature=0, max_tokens=MAX_TOKENS).text.strip() for m in turns])
    clients = [_client(server) for _ in configs]

    def session(i: int) -> list[str]:
        persona, steer = configs[i]
        c = clients[i]
        out = c.predict(persona, "evil", api_name="/select_persona")
        assert any(isinstance(o, str) and f"(`{persona}`)" in o for o in out)  # the badge names the persona
        replies = []
        for message in turns:
            result = c.predict(*_send_args(pg, message, steer), api_name="/send")
            replies.append(_last_reply(result[0]))
        return replies

    with ThreadPoolExecutor(len(configs)) as pool:
        got = list(pool.map(session, range(len(configs))))
    assert got == expected


def test_bad_persona_on_disk_and_invalid_edits_never_break_the_session(server, pg, user_dir):
    c = _client(server)
    c.predict("pirate", "evil", api_name="/select_persona")
    out = c.predict("broken", "evil", api_name="/select_persona")
    status = next(o for o in out if isinstance(o, str) and "can't be used" in o)
    assert "can't be used" in status and "broken.yaml" in status and "unknown role model" in status
    out = c.predict("nul", "evil", api_name="/select_persona")
    assert any(isinstance(o, str) and "can't be used" in o and "0x0000" in o for o in out)
    # the previous persona is still the one answering
    result = c.predict(*_send_args(pg, "Ahoy?", {}), api_name="/send")
    assert "✓" in result[2]
    assert _text(result[0][0]) == pg.catalog.persona("pirate").greeting

    bad = (SHIPPED_PERSONAS / "pirate.yaml").read_text(encoding="utf-8").replace("steering: {}", "steering: {evil: 9}")
    issues = c.predict(bad, "pirate", "pirate", api_name="/validate")
    assert "Line" in issues and "at most 2" in issues
    saved = c.predict(bad, "pirate", "pirate", api_name="/save_persona")
    assert "Not saved" in saved[-1] and not (user_dir / "pirate.yaml").exists()
    good = bad.replace("steering: {evil: 9}", "steering: {evil: -0.5}")
    saved = c.predict(good, "pirate", "pirate", api_name="/save_persona")
    assert "Saved" in saved[-1] and pg.catalog.persona("pirate").steering == {"evil": -0.5}


def test_chat_state_stop_abandon_undo_and_export_import(pg):
    import time

    from playground.ui.transcript import parse_transcript

    st = ChatState(pg, "pirate")
    st.send("Hi!", temperature=0, max_tokens=8)
    updates = st.stream("Tell me a long story about the sea.", temperature=0, max_tokens=200)
    next(updates)
    with pytest.raises(PlaygroundError, match="Stop"):
        st.stream("Interrupting!")  # one reply at a time per tab
    assert st.request_stop()
    live = list(updates)[-1]
    assert live.stopped and 0 < len(live.tokens) < 200
    assert st.session.history[-1].assistant == live.text  # the model remembers what it said
    assert not st.busy and not pg.generation_lock.locked()

    # the page goes away mid-reply: generation stops and the model is free again
    updates = st.stream("And another one?", temperature=0, max_tokens=200)
    next(updates)
    updates.close()
    deadline = time.monotonic() + 10
    while st.busy and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not st.busy and not pg.generation_lock.locked() and st.turns[-1].reply.stopped

    assert st.undo() is not None and len(st.turns) == len(st.session.history) == 2
    copy = ChatState.from_transcript(pg, parse_transcript(st.export_json()))
    assert [t.user for t in copy.turns] == [t.user for t in st.turns] and copy.trend() == st.trend()
    # the imported history is what the model sees: the next reply is the same as in the original chat
    assert (
        copy.send("What next?", temperature=0, max_tokens=12).text
        == st.send("What next?", temperature=0, max_tokens=12).text
    )


def test_chat_state_first_wait_yields_the_empty_reply_while_the_model_reads(pg):
    st = ChatState(pg, "assistant")
    updates = st.stream("Hello there!", temperature=0, max_tokens=4, first_wait=0.0)
    first = next(updates)  # nothing can have come yet: the page is told so, then the reply streams as usual
    assert not first.tokens and not first.done and not first.stopped
    last = list(updates)[-1]
    fresh = ChatState(pg, "assistant").send("Hello there!", temperature=0, max_tokens=4)
    assert last.done and last.tokens and last.text == fresh.text


def test_a_message_sent_before_the_page_loaded_starts_the_chat_and_keeps_it(server, pg):
    """A browser that sends before the page's load event ran has no chat state yet: the first message makes it
    (with the persona the picker shows), and the next message continues the same conversation."""
    c = _client(server)  # an API client never runs the load event
    first = c.predict(*_send_args(pg, "Hello! Who are you?", {}), api_name="/send")
    assert "✓" in first[2]
    second = c.predict(*_send_args(pg, "Tell me one thing you like.", {}), api_name="/send")
    assert "✓" in second[2]
    users = [_text(m) for m in second[0] if m["role"] == "user"]
    assert users == ["Hello! Who are you?", "Tell me one thing you like."]
