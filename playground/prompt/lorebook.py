"""Lorebooks (character-card "world info"): entries inserted into the prompt when their keys come up.

A persona's ``lorebook`` holds entries, each with trigger ``keys`` and ``content``. Before every reply the
most recent messages (``scan_depth`` of them, the new user message included) are scanned; an entry whose key
appears there (or that is ``constant``) is inserted into the system message, ``before_char`` entries before
the persona's prompt and ``after_char`` entries after it, each group in ``insertion_order``. When the
inserted text would exceed the token budget, entries with the lowest ``priority`` are left out first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_SCAN_DEPTH = 4
POSITIONS = ("before_char", "after_char")


@dataclass(frozen=True)
class LoreEntry:
    content: str
    keys: tuple[str, ...] = ()
    secondary_keys: tuple[str, ...] = ()
    selective: bool = False
    constant: bool = False
    enabled: bool = True
    case_sensitive: bool = False
    use_regex: bool = False
    insertion_order: int = 100
    priority: int = 10
    position: str = "after_char"
    name: str = ""
    comment: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.comment or (self.keys[0] if self.keys else self.content[:30])


@dataclass(frozen=True)
class Lorebook:
    entries: tuple[LoreEntry, ...] = ()
    name: str = ""
    description: str = ""
    scan_depth: int | None = None
    token_budget: int | None = None
    recursive_scanning: bool = False
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class Activation:
    """Entries chosen for one prompt, in prompt order, plus those left out by the budget."""

    before: list[LoreEntry] = field(default_factory=list)
    after: list[LoreEntry] = field(default_factory=list)
    over_budget: list[LoreEntry] = field(default_factory=list)

    @property
    def inserted(self) -> list[LoreEntry]:
        return self.before + self.after


ENTRY_FIELDS = (
    "content",
    "keys",
    "secondary_keys",
    "selective",
    "constant",
    "enabled",
    "case_sensitive",
    "use_regex",
    "insertion_order",
    "priority",
    "position",
    "name",
    "comment",
    "extras",
)


def entry_from_data(data: dict[str, Any]) -> LoreEntry:
    """Build an entry from validated persona-YAML data."""
    defaults = LoreEntry("")
    values: dict[str, Any] = {}
    for name in ENTRY_FIELDS:
        if name in data and data[name] is not None:
            value = data[name]
            if isinstance(value, list):
                value = tuple(str(v) for v in value)
            elif name == "extras":
                value = dict(value)
            values[name] = value
    values.setdefault("content", defaults.content)
    return LoreEntry(**values)


def lorebook_from_data(data: dict[str, Any] | None) -> Lorebook | None:
    if not data:
        return None
    return Lorebook(
        entries=tuple(entry_from_data(e) for e in data.get("entries") or ()),
        name=str(data.get("name") or ""),
        description=str(data.get("description") or ""),
        scan_depth=data.get("scan_depth"),
        token_budget=data.get("token_budget"),
        recursive_scanning=bool(data.get("recursive_scanning", False)),
        extras=dict(data.get("extras") or {}),
    )


def entry_to_data(entry: LoreEntry) -> dict[str, Any]:
    """Persona-YAML data for an entry; fields equal to their defaults are left out."""
    defaults = LoreEntry("")
    out: dict[str, Any] = {}
    for name in ENTRY_FIELDS:
        value = getattr(entry, name)
        if name != "content" and value == getattr(defaults, name):
            continue
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


def lorebook_to_data(book: Lorebook) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if book.name:
        out["name"] = book.name
    if book.description:
        out["description"] = book.description
    if book.scan_depth is not None:
        out["scan_depth"] = book.scan_depth
    if book.token_budget is not None:
        out["token_budget"] = book.token_budget
    if book.recursive_scanning:
        out["recursive_scanning"] = True
    out["entries"] = [entry_to_data(e) for e in book.entries]
    if book.extras:
        out["extras"] = dict(book.extras)
    return out


_SLASH_REGEX = re.compile(r"^/(.*)/([a-z]*)$", re.DOTALL)


def compile_key(key: str, *, regex: bool, case_sensitive: bool) -> re.Pattern[str]:
    """A matcher for one key: a whole-word literal, or a regex (``/pattern/flags`` is accepted).

    Raises ``re.error`` for an invalid regex.
    """
    flags = 0 if case_sensitive else re.IGNORECASE
    if regex:
        m = _SLASH_REGEX.match(key)
        if m:
            key = m.group(1)
            if "i" in m.group(2):
                flags |= re.IGNORECASE
            if "s" in m.group(2):
                flags |= re.DOTALL
            if "m" in m.group(2):
                flags |= re.MULTILINE
        return re.compile(key, flags)
    escaped = re.escape(key.strip())
    # Whole words where the key starts/ends with a word character; plain substring otherwise.
    if key.strip()[:1].isalnum() or key.strip()[:1] == "_":
        escaped = r"(?<!\w)" + escaped
    if key.strip()[-1:].isalnum() or key.strip()[-1:] == "_":
        escaped += r"(?!\w)"
    return re.compile(escaped, flags)


def invalid_keys(entry: LoreEntry) -> list[str]:
    """Keys of a regex entry that do not compile (they never match)."""
    bad = []
    for key in entry.keys + entry.secondary_keys:
        try:
            compile_key(key, regex=entry.use_regex, case_sensitive=entry.case_sensitive)
        except re.error:
            bad.append(key)
    return bad


def _matches_any(keys: Iterable[str], text: str, entry: LoreEntry) -> bool:
    for key in keys:
        if not key.strip():
            continue
        try:
            pattern = compile_key(key, regex=entry.use_regex, case_sensitive=entry.case_sensitive)
        except re.error:
            continue
        if pattern.search(text):
            return True
    return False


def triggered(entry: LoreEntry, text: str) -> bool:
    """Whether ``entry`` fires on ``text`` (constant entries always fire)."""
    if not entry.enabled:
        return False
    if entry.constant:
        return True
    if not _matches_any(entry.keys, text, entry):
        return False
    if entry.selective and entry.secondary_keys:
        return _matches_any(entry.secondary_keys, text, entry)
    return True


def activate(
    book: Lorebook | None,
    recent_messages: Sequence[str],
    count_tokens: Callable[[str], int] | None = None,
    default_budget: int | None = None,
) -> Activation:
    """Choose the entries for the next prompt.

    ``recent_messages`` is the conversation oldest first, ending with the new user message; only the last
    ``scan_depth`` of them are scanned. ``count_tokens`` measures an entry for the budget (the book's
    ``token_budget``, else ``default_budget``; no budget when both are unset or there is no counter).
    """
    out = Activation()
    if book is None or not book.entries:
        return out
    depth = book.scan_depth or DEFAULT_SCAN_DEPTH
    text = "\n".join(recent_messages[-depth:])
    chosen: list[LoreEntry] = []
    pending = [e for e in book.entries if e.enabled]
    while True:
        fired = [e for e in pending if triggered(e, text)]
        if not fired:
            break
        chosen += fired
        pending = [e for e in pending if e not in fired]
        if not book.recursive_scanning:
            break
        text = "\n".join([text] + [e.content for e in fired])
    budget = book.token_budget or default_budget
    if budget and count_tokens is not None:
        kept: list[LoreEntry] = []
        used = 0
        for entry in sorted(chosen, key=lambda e: (-e.priority, e.insertion_order)):
            cost = count_tokens(entry.content)
            if used + cost <= budget:
                kept.append(entry)
                used += cost
            else:
                out.over_budget.append(entry)
        chosen = [e for e in chosen if e in kept]
    chosen.sort(key=lambda e: e.insertion_order)
    out.before = [e for e in chosen if e.position == "before_char"]
    out.after = [e for e in chosen if e.position != "before_char"]
    return out
