"""Persona catalog, composition of persona + role models, placeholders and safe names."""

from __future__ import annotations

import pytest

from playground.definitions.personas import Catalog, compose_system_prompt, render_placeholders, sanitize_id
from playground.errors import NotFoundError, ValidationError

from .conftest import REPO


@pytest.fixture(scope="module")
def catalog():
    return Catalog()


def test_catalog_lists_shipped_personas(catalog):
    ids = dict(catalog.list_personas())
    assert "assistant" in ids and len(ids) >= 6
    assert all("(invalid)" not in label for label in ids.values())


def test_lookup_by_id_and_by_path(catalog):
    by_id = catalog.persona("pirate")
    by_path = catalog.persona(str(REPO / "personas" / "pirate.yaml"))
    assert by_id == by_path
    assert by_id.greeting and by_id.role_models


def test_unknown_persona_suggests_close_name(catalog):
    with pytest.raises(NotFoundError, match="did you mean 'pirate'"):
        catalog.persona("pirat")


def test_composition_appends_role_model_principles_once(catalog):
    persona = catalog.persona("pirate")
    caretaker = catalog.role_model("caretaker")
    prompt = compose_system_prompt(persona, [caretaker, caretaker])
    assert prompt.startswith(persona.system_prompt)
    for principle in caretaker.principles:
        assert prompt.count(principle) == 1
    assert "Caretaker" in prompt


def test_composition_without_role_models_is_the_persona_prompt(catalog):
    persona = catalog.persona("assistant")
    assert compose_system_prompt(persona, []) == persona.system_prompt


def test_placeholders():
    assert render_placeholders("{{char}} greets {{ user }}, {{CHAR}}!", "Rook", "Ann") == "Rook greets Ann, Rook!"


@pytest.mark.parametrize(
    ("raw", "expected"), [("My Pirate!", "my_pirate"), ("../../etc/passwd", "etc_passwd"), ("a/b\\c", "a_b_c")]
)
def test_sanitize_id_blocks_path_traversal(raw, expected):
    assert sanitize_id(raw) == expected


def test_sanitize_id_rejects_empty():
    with pytest.raises(ValidationError):
        sanitize_id("../..")


def test_parse_persona_text_reports_positions(catalog):
    with pytest.raises(ValidationError) as err:
        catalog.parse_persona_text("name: X\ndescription: d\nsystem_prompt: s\nrole_models: [teacher]\n", "edit.yaml")
    assert str(err.value).startswith("edit.yaml:4:15: unknown role model 'teacher'")


def test_persona_text_gets_the_same_checks_as_validate():
    from playground.errors import ValidationError

    text = "name: A\ndescription: b\nsystem_prompt: c\nguard:\n  signals:\n    evil: {warn: 5, act: 2}\n"
    with pytest.raises(ValidationError, match="warn \\(5\\) is above act \\(2\\)"):
        Catalog().parse_persona_text(text, "x.yaml")
