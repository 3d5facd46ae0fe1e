"""A card's ``character_book`` to a persona ``lorebook`` and back."""

from __future__ import annotations

from typing import Any

from ...prompt.lorebook import ENTRY_FIELDS as ENTRY_FIELD_NAMES
from ...prompt.lorebook import entry_from_data, entry_to_data, invalid_keys
from .report import ImportReport

_BOOLS = ("selective", "constant", "enabled", "case_sensitive", "use_regex", "recursive_scanning")
_INTS = ("insertion_order", "priority", "scan_depth", "token_budget")
_TEXTS = ("name", "comment", "content", "description")
_KEY_LISTS = ("keys", "secondary_keys")
# The persona lorebook's entry fields (lorebook.ENTRY_FIELDS) are the card fields that have a home.
ENTRY_FIELDS = tuple(f for f in ENTRY_FIELD_NAMES if f != "extras")
BOOK_FIELDS = ("name", "description", "scan_depth", "token_budget", "recursive_scanning")


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _convert(key: str, value: Any) -> tuple[bool, Any]:
    """(ok, converted) for one known field of a book or entry."""
    if key in _BOOLS:
        return isinstance(value, bool), value
    if key in _INTS:
        number = _as_int(value)
        if number is None or (key in ("scan_depth", "token_budget") and number < 1):
            return False, value
        return True, number
    if key in _TEXTS:
        return isinstance(value, str), value
    if key in _KEY_LISTS:
        if isinstance(value, str):  # some editors write "a, b, c"
            value = [k.strip() for k in value.split(",")]
        if isinstance(value, list) and all(isinstance(k, str) for k in value):
            return True, [k for k in value if k.strip()]
        return False, value
    if key == "position":
        return value in ("before_char", "after_char"), value
    return False, value


def _split(obj: dict[str, Any], known: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Known fields converted; everything else (and anything of the wrong type) as extras."""
    mapped: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    for key, value in obj.items():
        key = str(key)
        if value is None or value == "" or (key == "extensions" and value == {}):
            continue
        if key in known:
            ok, converted = _convert(key, value)
            if ok:
                mapped[key] = converted
                continue
        extras[key] = value
    return mapped, extras


def map_character_book(book: Any, report: ImportReport) -> tuple[dict[str, Any] | None, Any]:
    """(lorebook data for the persona, anything to keep under extras.character_book)."""
    if not isinstance(book, dict) or not isinstance(book.get("entries"), list):
        report.keep("character_book")
        report.note("character_book has no list of entries; kept as-is under extras.character_book")
        return None, book
    mapped, extras = _split({k: v for k, v in book.items() if k != "entries"}, BOOK_FIELDS)
    entries = []
    unreadable = []
    for i, raw in enumerate(book["entries"]):
        if not isinstance(raw, dict):
            unreadable.append(raw)
            continue
        fields, entry_extras = _split(raw, ENTRY_FIELDS)
        if entry_extras:
            fields["extras"] = entry_extras
        entry = entry_from_data(fields)
        label = entry.label or f"#{i}"
        if not entry.keys and not entry.constant and entry.enabled:
            report.note(f"lorebook entry '{label}' has no keys and is not constant: it never fires")
        bad = invalid_keys(entry)
        if bad:
            report.note(f"lorebook entry '{label}': regex key(s) {bad} do not compile and never match")
        entries.append(entry_to_data(entry))
    if unreadable:
        extras["unreadable_entries"] = unreadable
        report.note(f"{len(unreadable)} lorebook entr{'y is' if len(unreadable) == 1 else 'ies are'} not an object")
    mapped["entries"] = entries
    if extras:
        mapped["extras"] = extras
        report.keep(f"character_book: {', '.join(extras)} (under lorebook.extras)")
    report.map("character_book", f"lorebook ({len(entries)} entries)")
    return mapped, None


def lorebook_to_character_book(lorebook: dict[str, Any]) -> dict[str, Any]:
    """A V2 ``character_book`` from persona lorebook data (``lorebook_to_data`` output)."""
    book: dict[str, Any] = {k: lorebook[k] for k in BOOK_FIELDS if k in lorebook}
    book_extras = dict(lorebook.get("extras") or {})
    book["extensions"] = book_extras.pop("extensions", {})
    book.update(book_extras)
    entries = []
    for entry in lorebook.get("entries") or []:
        out: dict[str, Any] = {
            "keys": list(entry.get("keys") or []),
            "content": entry.get("content", ""),
            "enabled": entry.get("enabled", True),
            "insertion_order": entry.get("insertion_order", 100),
        }
        out.update({k: v for k, v in entry.items() if k in ENTRY_FIELDS and k not in out})
        entry_extras = dict(entry.get("extras") or {})
        out["extensions"] = entry_extras.pop("extensions", {})
        out.update({k: v for k, v in entry_extras.items() if k not in out})
        entries.append(out)
    book["entries"] = entries
    return book
