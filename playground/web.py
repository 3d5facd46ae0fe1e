"""Library functions behind the web UI and its API (no Gradio imports here)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .errors import PlaygroundError, ValidationError
from .session import ChatSession, Playground, StreamEvent


def parse_steer_json(text: str | None) -> dict[str, float]:
    """Parse the API's ``steer_json`` argument: a JSON object mapping trait -> strength."""
    if text is None or not str(text).strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlaygroundError(f"steer_json: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if not isinstance(value, dict):
        raise PlaygroundError('steer_json must be a JSON object like {"humorous": 0.8}')
    out: dict[str, float] = {}
    for key, strength in value.items():
        if isinstance(strength, bool) or not isinstance(strength, int | float):
            raise PlaygroundError(f"steer_json: strength for '{key}' must be a number, got {strength!r}")
        out[str(key)] = float(strength)
    return out


def describe_error(exc: Exception) -> str:
    """A short, user-facing description of an error, one problem per line."""
    if isinstance(exc, ValidationError):
        return "\n".join(str(i) for i in exc.issues)
    return str(exc)


def api_chat(pg: Playground, message: str, persona: str, steer_json: str = "") -> dict[str, Any]:
    """Stateless chat for the HTTP API: returns the same object as ``chat --json``."""
    steering = parse_steer_json(steer_json)
    session = pg.session(persona or "assistant")
    return session.send(message, steering=steering or None).to_dict()


def stream_into_history(
    session: ChatSession, message: str, history: list[dict[str, Any]], **options: Any
) -> Iterator[tuple[list[dict[str, Any]], StreamEvent]]:
    """Append the user's message and a growing assistant message to a messages-format history."""
    history = list(history) + [{"role": "user", "content": message}, {"role": "assistant", "content": ""}]
    text = ""
    for event in session.stream(message, **options):
        if event.kind == "token":
            text += event.text
            history[-1] = {"role": "assistant", "content": text}
        yield history, event
