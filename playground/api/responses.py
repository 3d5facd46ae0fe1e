"""The OpenAI shapes of what a reply produces: ``chat.completion`` (whole) and ``chat.completion.chunk`` (streamed,
server-sent events), with the playground's additions beside the standard fields.

Additions: each streamed chunk carries ``probes`` (this token's calibrated readouts, ``{trait: z}``) and ``guard``
(guard events raised since the previous chunk); a guardrail that discards the text so far sends a chunk with
``"reset": true`` (the reply is written again), one that blocks sends ``"replace"`` with the whole new reply.
The last chunk, and the whole response, carry ``"playground"``: the object ``chat --json`` prints.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from ..chat.reply import ChatResult

# ChatResult.finish_reason -> OpenAI's
FINISH = {"end": "stop", "stop_string": "stop", "length": "length", "context": "length", "blocked": "content_filter"}


class Shapes:
    """The fixed parts of one completion's chunks: its id, creation time and the model name the client used."""

    def __init__(self, model: str):
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model = model

    def _head(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model}

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {**self._head("chat.completion.chunk"), "choices": [choice], **extra}

    def final_chunk(self, result: ChatResult) -> dict[str, Any]:
        return self.chunk({}, FINISH.get(result.finish_reason, "stop"), playground=result.to_dict())

    def usage_chunk(self, result: ChatResult) -> dict[str, Any]:
        return {**self._head("chat.completion.chunk"), "choices": [], "usage": usage(result)}

    def completion(self, result: ChatResult) -> dict[str, Any]:
        message = {"role": "assistant", "content": result.reply}
        choice = {"index": 0, "message": message, "finish_reason": FINISH.get(result.finish_reason, "stop")}
        return {
            **self._head("chat.completion"),
            "choices": [choice],
            "usage": usage(result),
            "playground": result.to_dict(),
        }


def usage(result: ChatResult) -> dict[str, int]:
    prompt, done = result.prompt_tokens, len(result.tokens)
    return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}


def sse(data: dict[str, Any] | str) -> str:
    """One server-sent event (``data: ...`` and a blank line)."""
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


def sse_comment(text: str) -> str:
    """A comment line: SSE clients ignore it (status while the reply waits; keeps proxies from timing out)."""
    return f": {text}\n\n"


__all__ = ["FINISH", "Shapes", "sse", "sse_comment", "usage"]
