"""Lorebook activation: keys, scan depth, recursion, budget, and the persona YAML that holds it."""

from __future__ import annotations

import dataclasses

from playground.definitions.personas import Catalog, persona_from_data, persona_to_data
from playground.prompt.lorebook import Lorebook, LoreEntry, activate, invalid_keys


def _labels(book: Lorebook, *messages: str, **kw) -> list[str]:
    return [e.name for e in activate(book, list(messages), **kw).inserted]


def test_recursive_scanning_follows_inserted_text():
    a = LoreEntry("The Guild runs the docks.", keys=("harbour",), name="a")
    b = LoreEntry("The Guild is led by Vey.", keys=("guild",), name="b")
    assert _labels(Lorebook((a, b)), "the harbour") == ["a"]
    assert _labels(Lorebook((a, b), recursive_scanning=True), "the harbour") == ["a", "b"]


def test_budget_drops_lowest_priority_and_reports_it():
    big = LoreEntry("word " * 50, keys=("x",), priority=1, name="big")
    small = LoreEntry("word " * 5, keys=("x",), priority=9, name="small")
    chosen = activate(Lorebook((big, small), token_budget=20), ["x"], count_tokens=lambda t: len(t.split()))
    assert [e.name for e in chosen.inserted] == ["small"] and [e.name for e in chosen.over_budget] == ["big"]


def test_insertion_order_and_case_sensitivity():
    late = LoreEntry("late", keys=("Moon",), insertion_order=9, name="late", case_sensitive=True)
    early = LoreEntry("early", keys=("moon",), insertion_order=1, name="early")
    assert _labels(Lorebook((late, early)), "the Moon") == ["early", "late"]
    assert _labels(Lorebook((late, early)), "the moon") == ["early"]


def test_invalid_regex_never_matches_and_is_reported():
    bad = LoreEntry("x", keys=("([",), use_regex=True)
    assert invalid_keys(bad) == ["(["]
    assert activate(Lorebook((bad,)), ["(["]).inserted == []


def test_persona_data_round_trip_with_lorebook():
    data = {
        "name": "N",
        "description": "d",
        "system_prompt": "s",
        "post_history_instructions": "p",
        "lorebook": {"scan_depth": 3, "entries": [{"keys": ["k"], "content": "c", "extras": {"id": 4}}]},
    }
    persona = persona_from_data(data, "n")
    assert persona.lorebook.entries[0].extras == {"id": 4}
    assert persona_to_data(persona) == data
    pirate = Catalog().persona("pirate")
    assert persona_from_data(persona_to_data(pirate), "pirate") == dataclasses.replace(pirate, path=None)
