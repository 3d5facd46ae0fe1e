"""Chat exports: the JSON file a tab's conversation is saved to and loaded back from (``ChatState.to_transcript``
/ ``from_transcript``). ``parse_transcript`` checks an uploaded file before anything is built from it, and says
what is wrong with it: size, encoding, JSON, format marker, and each turn's shape. A turn may hold alternative
replies (``swipes``, the one shown in ``shown``; ``playground.ui.turns``); its ``assistant`` is the one shown,
so a reader that knows nothing of alternatives reads the conversation as it was. A continued reply is one reply
(its ``reply.result.finish_reason`` says how the last part ended)."""

from __future__ import annotations

import json
from typing import Any

from ..errors import PlaygroundError
from .live_reply import LiveReply

TRANSCRIPT_FORMAT = "persona-playground-chat"
TRANSCRIPT_VERSION = 1
MAX_TRANSCRIPT_BYTES = 2 * 1024 * 1024


def parse_transcript(raw: bytes | str, name: str = "chat.json") -> dict[str, Any]:
    """Check an uploaded chat export; raise PlaygroundError saying what is wrong."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if len(raw) > MAX_TRANSCRIPT_BYTES:
        raise PlaygroundError(f"{name}: {len(raw):,} bytes; a chat export may be at most {MAX_TRANSCRIPT_BYTES:,}")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise PlaygroundError(f"{name}: not UTF-8 text; pick a chat exported from the playground (.json)") from None
    except json.JSONDecodeError as exc:
        raise PlaygroundError(f"{name}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict) or data.get("format") != TRANSCRIPT_FORMAT:
        raise PlaygroundError(f'{name}: not a playground chat export (expected "format": "{TRANSCRIPT_FORMAT}")')
    if not isinstance(data.get("persona"), str) or not data["persona"]:
        raise PlaygroundError(f"{name}: 'persona' must name a persona")
    turns = data.get("turns")
    if not isinstance(turns, list):
        raise PlaygroundError(f"{name}: 'turns' must be a list")
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict) or not isinstance(turn.get("user"), str):
            raise PlaygroundError(f"{name}: turn {i + 1} needs 'user' and 'assistant' strings")
        _check_reply(turn, f"{name}: turn {i + 1}")
        swipes = turn.get("swipes")
        if swipes is None:
            continue
        if not isinstance(swipes, list) or not swipes:
            raise PlaygroundError(f"{name}: turn {i + 1}: 'swipes' must be a list of replies")
        for k, swipe in enumerate(swipes):
            if not isinstance(swipe, dict):
                raise PlaygroundError(f"{name}: turn {i + 1}, reply {k + 1}: not an object")
            _check_reply(swipe, f"{name}: turn {i + 1}, reply {k + 1}")
        shown = turn.get("shown", 0)
        if not isinstance(shown, int) or not 0 <= shown < len(swipes):
            raise PlaygroundError(f"{name}: turn {i + 1}: 'shown' must be a reply number from 0 to {len(swipes) - 1}")
    return data


def _check_reply(item: dict[str, Any], where: str) -> None:
    """One reply of a turn: its text (``assistant``), and the optional ``reply`` record."""
    if not isinstance(item.get("assistant"), str):
        raise PlaygroundError(f"{where} needs 'user' and 'assistant' strings")
    reply = item.get("reply")
    if reply is not None:
        try:
            LiveReply.from_dict(reply)
        except (AttributeError, TypeError, ValueError):
            raise PlaygroundError(f"{where}: 'reply' is malformed") from None
