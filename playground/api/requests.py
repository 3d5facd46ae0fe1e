"""Reading a ``POST /v1/chat/completions`` body into a :class:`CompletionRequest`, or an :class:`ApiError` (400)
naming the field.

Standard fields: ``model`` (the model id, or a persona id: ``GET /v1/models`` lists both), ``messages``,
``temperature``, ``top_p``, ``max_tokens`` (or ``max_completion_tokens``), ``seed``, ``stop``, ``stream``,
``stream_options.include_usage``. The playground's own: ``persona``, ``steering`` (``{"humorous": 1}``, -2..2)
and ``guard`` (a policy name under personas/policies, ``true`` for the server's policy, ``false`` for none).
Fields of the OpenAI API this server does not use (penalties, ``logit_bias``, ``user``, ...) are accepted and
named in the reply's ``notices``; a request it cannot honour (``n`` > 1, images, tools) is refused.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..prompt.conversation import Turn
from .errors import ApiError, bad_request

IGNORED = ("frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "top_logprobs", "user", "metadata")
REFUSED = {"tools": "tool calls", "functions": "function calls", "tool_choice": "tool calls", "audio": "audio"}
MAX_STOPS = 4


@dataclass(frozen=True)
class CompletionRequest:
    model: str  # as the client named it (echoed back in responses)
    persona: str | None  # a persona id, or None: the plain model (the client's system message is the whole prompt)
    system: str  # the client's system message(s), "" if none
    history: list[Turn]
    message: str
    prefix: str = ""  # a trailing assistant message: the reply continues it
    stream: bool = False
    include_usage: bool = False
    sampling: dict[str, Any] = field(default_factory=dict)  # temperature, top_p, max_tokens, seed (those given)
    steering: dict[str, float] = field(default_factory=dict)
    guard: str | bool = True  # True: the server's policy; False: none; a name: personas/policies/<name>.yaml
    stop: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise bad_request("the request body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise bad_request(f"the request body is not valid JSON: {where}: {exc.msg}") from None
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    return body


def _text(content: Any, where: str) -> str:
    """A message's content: a string, or a list of ``{"type": "text", "text": ...}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise bad_request(f"{where}: only text content is supported, got a '{kind}' part", "messages")
            parts.append(part["text"])
        return "".join(parts)
    raise bad_request(f"{where}: content must be a string or a list of text parts", "messages")


def _conversation(messages: Any) -> tuple[str, list[Turn], str, str]:
    """(system text, earlier turns, the message to answer, the reply start) from OpenAI ``messages``."""
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty list", "messages")
    system: list[str] = []
    pairs: list[list[str]] = []  # [user, assistant] with consecutive messages of one role joined
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m:
            raise bad_request(f"messages[{i}] must be an object with a 'role'", "messages")
        role, text = m["role"], _text(m.get("content", ""), f"messages[{i}]")
        if role in ("system", "developer"):
            system.append(text)
        elif role == "user":
            if pairs and not pairs[-1][1]:  # two user messages in a row: one message
                pairs[-1][0] += "\n\n" + text
            else:
                pairs.append([text, ""])
        elif role == "assistant":
            if not pairs:
                pairs.append(["", text])  # a greeting before the user's first message
            else:
                pairs[-1][1] += ("\n\n" if pairs[-1][1] else "") + text
        else:
            raise bad_request(f"messages[{i}]: role '{role}' is not supported (system, user, assistant)", "messages")
    if not pairs or not pairs[-1][0].strip():
        raise bad_request("'messages' needs a user message to answer", "messages")
    last_user, last_reply = pairs[-1]
    history = [Turn(u, a) for u, a in pairs[:-1]]
    return "\n\n".join(system).strip(), history, last_user, last_reply


def _number(body: dict[str, Any], key: str, lo: float, hi: float, integer: bool = False) -> float | int | None:
    value = body.get(key)
    if value is None:
        return None
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type or not math.isfinite(value) or not lo <= value <= hi:
        kind = "an integer" if integer else "a number"
        raise bad_request(f"'{key}' must be {kind} in {lo:g}..{hi:g}, got {value!r}", key)
    return value


def _steering(value: Any) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request("'steering' must be an object like {\"humorous\": 1}", "steering")
    out = {}
    for trait, strength in value.items():
        if isinstance(strength, bool) or not isinstance(strength, int | float) or not math.isfinite(strength):
            raise bad_request(f"steering: the strength of '{trait}' must be a number, got {strength!r}", "steering")
        out[str(trait)] = float(strength)
    return out


def _stop(value: Any) -> list[str]:
    stops = [value] if isinstance(value, str) else value if value is not None else []
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops) or len(stops) > MAX_STOPS:
        raise bad_request(f"'stop' must be a string or a list of up to {MAX_STOPS} non-empty strings", "stop")
    return stops


def _guard(value: Any) -> str | bool:
    if value is None:
        return True
    if isinstance(value, bool) or (isinstance(value, str) and value.strip()):
        return value
    raise bad_request("'guard' must be a policy name, true (the server's policy) or false (none)", "guard")


def resolve_persona(body: dict[str, Any], personas: Sequence[str], model_id: str) -> tuple[str, str | None]:
    """(the model name to echo, the persona id or None) from ``model`` and ``persona``."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required: the model id or a persona id (GET /v1/models lists them)", "model")
    known = f"{model_id}, {', '.join(personas)}"
    if model in personas:
        persona: str | None = model
    elif model == model_id:
        persona = None
    else:
        raise ApiError(404, f"no model '{model}' here (available: {known})", param="model", code="model_not_found")
    chosen = body.get("persona")
    if chosen is not None:
        if chosen not in personas:
            raise bad_request(f"unknown persona {chosen!r} (available: {', '.join(personas)})", "persona")
        persona = chosen
    return model, persona


def parse_request(body: dict[str, Any], personas: Sequence[str], model_id: str) -> CompletionRequest:
    model, persona = resolve_persona(body, personas, model_id)
    for key, what in REFUSED.items():
        if body.get(key):
            raise bad_request(f"'{key}': {what} are not supported by this server", key)
    _number(body, "n", 1, 1, integer=True)  # one choice per request
    system, history, message, prefix = _conversation(body.get("messages"))
    tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    sampling = {
        "temperature": _number(body, "temperature", 0, 2),
        "top_p": _number(body, "top_p", 0, 1),
        "max_tokens": _number({"max_tokens": tokens}, "max_tokens", 1, 8192, integer=True),
        "seed": _number(body, "seed", 0, 2**32 - 1, integer=True),
    }
    options = body.get("stream_options") or {}
    return CompletionRequest(
        model=model,
        persona=persona,
        system=system,
        history=history,
        message=message,
        prefix=prefix,
        stream=bool(body.get("stream", False)),
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
        sampling={k: v for k, v in sampling.items() if v is not None},
        steering=_steering(body.get("steering")),
        guard=_guard(body.get("guard")),
        stop=_stop(body.get("stop")),
        ignored=[k for k in IGNORED if body.get(k) not in (None, 0, False, {}, [])],
    )


__all__ = ["CompletionRequest", "parse_json", "parse_request", "resolve_persona"]
