"""Shipped JSON Schemas: up to date with the validator's specs, referenced by every shipped YAML file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from playground.cli.main import main
from playground.definitions import json_schemas
from playground.definitions.yaml_source import load_yaml_file

from .conftest import REPO

MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")
SHIPPED = sorted((REPO / "personas").rglob("*.yaml"))
KIND_BY_FOLDER = {"personas": "persona", "role_models": "role_model", "traits": "trait", "policies": "policy"}


def test_shipped_schema_files_equal_the_generated_ones():
    generated = json_schemas.generate()
    assert set(generated) == {
        "persona.schema.json",
        "role_model.schema.json",
        "trait.schema.json",
        "policy.schema.json",
    }
    for name, text in generated.items():
        shipped = REPO / "schemas" / name
        assert shipped.read_text(encoding="utf-8") == text, f"{shipped} is stale: python -m playground schema --write"


def test_schema_check_and_write(tmp_path):
    assert main(["schema", "--check"]) == 0
    assert set(json_schemas.outdated(tmp_path)) == set(json_schemas.generate())
    written = json_schemas.write(tmp_path)
    assert len(written) == 4 and json_schemas.outdated(tmp_path) == []
    assert json_schemas.write(tmp_path) == []  # nothing changed, nothing rewritten


def _check(schema: dict, value, path: str = "$") -> list[str]:
    """A small JSON Schema subset checker (the keywords our generator emits)."""
    errors: list[str] = []
    kind = schema.get("type")
    types = {"string": str, "number": (int, float), "integer": int, "boolean": bool, "array": list, "object": dict}
    if kind and (not isinstance(value, types[kind]) or (kind in ("number", "integer") and isinstance(value, bool))):
        return [f"{path}: expected {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: not in enum")
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: below minimum")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{path}: above maximum")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(f"{path}: too long")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{path}: does not match {schema['pattern']}")
    if kind == "array":
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{path}: too few items")
        for i, item in enumerate(value):
            errors += _check(schema.get("items", {}), item, f"{path}[{i}]")
    if kind == "object":
        props = schema.get("properties", {})
        errors += [f"{path}: missing {k}" for k in schema.get("required", []) if k not in value]
        for key, item in value.items():
            if key in props:
                errors += _check(props[key], item, f"{path}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += _check(schema["additionalProperties"], item, f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}: unknown {key}")
    return errors


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_yaml_points_at_its_schema_and_satisfies_it(path: Path):
    first = path.read_text(encoding="utf-8").splitlines()[0]
    m = MODELINE.match(first)
    assert m, f"{path}: first line should be the yaml-language-server $schema line"
    schema_path = (path.parent / m.group(1)).resolve()
    assert schema_path.name == f"{KIND_BY_FOLDER[path.parent.name]}.schema.json" and schema_path.is_file()
    errors = _check(json.loads(schema_path.read_text(encoding="utf-8")), load_yaml_file(path).data)
    assert errors == []


def test_the_schema_rejects_what_the_validator_rejects():
    schema = json.loads((REPO / "schemas" / "persona.schema.json").read_text(encoding="utf-8"))
    assert _check(schema, {"name": "x", "description": "d", "system_prompt": "  "})  # blank
    assert _check(schema, {"name": "x", "description": "d", "system_prompt": "s", "descripton": 1})  # unknown
    assert _check(schema, {"name": "x", "description": "d", "system_prompt": "s", "steering": {"evil": 5}})
    lore = {"entries": [{"keys": ["a"], "content": "b", "position": "middle"}]}
    assert _check(schema, {"name": "x", "description": "d", "system_prompt": "s", "lorebook": lore})
    assert not _check(schema, {"name": "x", "description": "d", "system_prompt": "s", "extras": {"any": [1]}})
