"""The Gradio app: api_name="chat" returns the chat --json object; bad input is an error, not a crash."""

from __future__ import annotations

import pytest

from playground.errors import PlaygroundError
from playground.ui import build_ui
from playground.web import parse_steer_json


@pytest.fixture(scope="module")
def server(playground):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = build_ui(playground)
    demo.queue(default_concurrency_limit=4)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server, verbose=False)


def test_chat_api_returns_contract(client, playground):
    out = client.predict("Hello!", "assistant", "", api_name="/chat")
    assert set(out) >= {"persona", "model", "reply", "tokens", "steering", "probes", "guard"}
    assert out["persona"] == "assistant" and out["reply"] == "".join(out["tokens"])


def test_chat_api_unknown_persona_is_an_error_and_server_survives(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="did you mean 'pirate'"):
        client.predict("Hello!", "pirat", "", api_name="/chat")
    assert client.predict("Hi", "pirate", "", api_name="/chat")["persona"] == "pirate"


def test_parse_steer_json():
    assert parse_steer_json("") == {}
    assert parse_steer_json('{"humorous": 1}') == {"humorous": 1.0}
    for bad in ("[1]", '{"evil": "lots"}', "{oops"):
        with pytest.raises(PlaygroundError):
            parse_steer_json(bad)
