"""Example dialogue in the character-card format (``mes_example``) to and from few-shot examples.

The card format: blocks that start with ``<START>``; inside, lines that begin with ``{{user}}:`` or
``{{char}}:`` (also ``<USER>:``, ``<BOT>:`` or the character's name) start a message, other lines continue
the message above. Each user message followed by a character message becomes one example.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_START = re.compile(r"<\s*start\s*>", re.IGNORECASE)
_USER = ("{{user}}", "<user>")
_CHAR = ("{{char}}", "<bot>")


@dataclass
class ParsedExamples:
    examples: list[dict[str, str]] = field(default_factory=list)  # [{"user": ..., "assistant": ...}]
    lossless: bool = True  # False when some text did not fit a user -> character exchange
    problems: list[str] = field(default_factory=list)


def _speaker_pattern(char_name: str) -> re.Pattern[str]:
    names = [re.escape(n) for n in (*_USER, *_CHAR)]
    if char_name.strip():
        names.append(re.escape(char_name.strip()))
    spaced = [n.replace(r"\{\{", r"\{\{\s*").replace(r"\}\}", r"\s*\}\}") for n in names]
    return re.compile(r"^\s*(" + "|".join(spaced) + r")\s*:\s?(.*)$", re.IGNORECASE)


def _role(label: str) -> str:
    compact = re.sub(r"\s+", "", label).lower()
    return "user" if compact in _USER else "char"


def parse_mes_example(text: str, char_name: str = "") -> ParsedExamples:
    """Few-shot examples from a ``mes_example`` string."""
    out = ParsedExamples()
    speaker = _speaker_pattern(char_name)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for b, block in enumerate(_START.split(text)):
        if not block.strip():
            continue
        messages: list[list[str]] = []  # [role, text]
        for line in block.split("\n"):
            m = speaker.match(line)
            if m:
                role = _role(m.group(1))
                if messages and messages[-1][0] == role:
                    messages[-1][1] += "\n" + m.group(2)  # same speaker twice in a row: one message
                else:
                    messages.append([role, m.group(2)])
            elif messages:
                messages[-1][1] += "\n" + line
            elif line.strip():
                out.lossless = False
                out.problems.append(f"block {b}: text before the first '{{{{user}}}}:' or '{{{{char}}}}:' line")
        i = 0
        while i < len(messages):
            role, said = messages[i]
            if role == "user" and i + 1 < len(messages):
                reply = messages[i + 1][1]
                if said.strip() and reply.strip():
                    out.examples.append({"user": said.strip(), "assistant": reply.strip()})
                else:
                    out.lossless = False
                    out.problems.append(f"block {b}: an exchange with an empty side")
                i += 2
                continue
            out.lossless = False
            where = "opens the block" if role == "char" else "has no reply"
            out.problems.append(f"block {b}: a {'character' if role == 'char' else 'user'} message {where}")
            i += 1
    return out


def to_mes_example(examples: list[tuple[str, str]]) -> str:
    """The card format for (user, assistant) pairs: one ``<START>`` block per example."""
    blocks = [f"<START>\n{{{{user}}}}: {user}\n{{{{char}}}}: {assistant}" for user, assistant in examples]
    return "\n".join(blocks)
