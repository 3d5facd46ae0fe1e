"""Read a character card from bytes: PNG (``ccv3``/``chara`` chunk), JSON, or text-generation-webui YAML.

Only reading and classifying happens here; :mod:`playground.definitions.cards.mapping` turns the card into a persona.
Every problem is a :class:`~playground.errors.ValidationError` naming the file and what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from ...errors import Issue, ValidationError
from ..yaml_source import load_yaml_bytes
from .png import PngError, is_png, text_chunks, text_keywords

MAX_CARD_BYTES = 16 * 1024 * 1024  # a whole card file (PNG cards carry an image)
MAX_CARD_TEXT = 4 * 1024 * 1024  # the card JSON or YAML itself
CARD_CHUNKS = ("ccv3", "chara")  # in order of preference
SPECS = {"chara_card_v2": "v2", "chara_card_v3": "v3"}
TGW_MARKERS = (
    "char_name",
    "char_persona",
    "char_greeting",
    "world_scenario",
    "example_dialogue",
    "context",
    "greeting",
)
V1_MARKERS = ("first_mes", "mes_example", "personality", "scenario")


@dataclass
class RawCard:
    """A decoded card before mapping: which kind, its fields, and where it came from."""

    kind: str  # v1 | v2 | v3 | tgw
    fields: dict[str, Any]  # V2/V3: the 'data' object; V1 and tgw: the whole document
    source: str  # the file name, for messages
    container: str  # e.g. "PNG, 'ccv3' chunk"
    top_level: dict[str, Any] = field(default_factory=dict)  # V2/V3: fields beside spec/spec_version/data
    spec_version: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def format(self) -> str:
        names = {
            "v1": "V1 character card (flat, no spec)",
            "v2": "chara_card_v2",
            "v3": "chara_card_v3",
            "tgw": "text-generation-webui character",
        }
        version = f" {self.spec_version}" if self.spec_version else ""
        return f"{names[self.kind]}{version} ({self.container})"


def card_error(source: str, message: str, line: int = 1, column: int = 1) -> ValidationError:
    return ValidationError([Issue(source, line, column, message)])


def _json_object(text: str, source: str, where: str) -> dict[str, Any]:
    """Parse card JSON; ``where`` is "" for a JSON file or "the 'chara' chunk" for a PNG."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if where:
            raise card_error(
                source, f"{where} holds invalid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            ) from None
        raise card_error(source, f"invalid JSON: {exc.msg}", exc.lineno, exc.colno) from None
    except RecursionError:
        raise card_error(source, f"{where or 'the JSON'} is nested too deeply to be a character card") from None
    if not isinstance(value, dict):
        raise card_error(source, f"{where or 'the JSON'} must be an object with the card's fields, not a list or value")
    return value


def classify(doc: dict[str, Any], source: str, container: str, *, yaml_file: bool = False) -> RawCard:
    """Decide V1 / V2 / V3 / tgw from the document's fields."""
    if "spec" in doc:
        spec = doc["spec"]
        if not isinstance(spec, str) or spec not in SPECS:
            raise card_error(
                source,
                f"unsupported card spec {spec!r}; expected 'chara_card_v2' or 'chara_card_v3' "
                "(or a flat V1 card without 'spec')",
            )
        data = doc.get("data")
        if not isinstance(data, dict):
            raise card_error(source, f"a {spec} card needs a 'data' object with the character's fields")
        top = {k: v for k, v in doc.items() if k not in ("spec", "spec_version", "data")}
        card = RawCard(SPECS[spec], dict(data), source, container, top, str(doc.get("spec_version", "")))
        expected = "2" if spec == "chara_card_v2" else "3"
        if card.spec_version and not card.spec_version.startswith(expected):
            card.notes.append(f"spec_version is '{card.spec_version}', unusual for {spec}; read it as {spec}")
        return card
    if isinstance(doc.get("data"), dict) and "name" in doc["data"]:
        top = {k: v for k, v in doc.items() if k != "data"}
        card = RawCard("v2", dict(doc["data"]), source, container, top)
        card.notes.append("no 'spec' field but a 'data' object: read as chara_card_v2")
        return card
    is_tgw = any(k in doc for k in TGW_MARKERS) and not any(k in doc for k in V1_MARKERS)
    if yaml_file or is_tgw:
        if not any(k in doc for k in ("name", "char_name")):
            raise card_error(source, "not a character: it has no 'name' (or 'char_name') field")
        return RawCard("tgw", dict(doc), source, container)
    if "name" not in doc:
        raise card_error(
            source, "not a character card: no 'spec' field (V2/V3) and no 'name' field (V1 or text-generation-webui)"
        )
    return RawCard("v1", dict(doc), source, container)


def _chunk_json(text: str, source: str, keyword: str) -> str:
    where = f"the '{keyword}' chunk"
    stripped = "".join(text.split())
    if stripped.startswith("{"):
        return text  # some old tools stored the JSON itself instead of base64
    try:
        raw = base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise card_error(source, f"{where} is not valid base64 (the card data is damaged)") from None
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise card_error(source, f"{where} decodes to bytes that are not UTF-8 (at byte {exc.start})") from None


def read_png(data: bytes, source: str) -> RawCard:
    try:
        chunks = text_chunks(data, limit=MAX_CARD_TEXT, keywords=CARD_CHUNKS)
    except PngError as exc:
        raise card_error(source, str(exc)) from None
    found = {c.keyword.lower(): c for c in reversed(chunks)}  # the first of each keyword wins
    present = [k for k in CARD_CHUNKS if k in found]
    if not present:
        names = ", ".join(sorted({f"'{k}'" for k in text_keywords(data)})) or "none"
        raise card_error(
            source, f"no character data in this PNG: no 'chara' or 'ccv3' text chunk (text chunks present: {names})"
        )
    notes: list[str] = []
    for i, keyword in enumerate(present):
        chunk = found[keyword]
        try:
            doc = _json_object(_chunk_json(chunk.text, source, keyword), source, f"the '{keyword}' chunk")
            card = classify(doc, source, f"PNG, '{keyword}' {chunk.chunk_type} chunk")
        except ValidationError as exc:
            if i + 1 < len(present):
                notes.append(
                    f"the '{keyword}' chunk could not be read ({exc.issues[0].message}); used '{present[i + 1]}'"
                )
                continue
            raise
        if len(present) > 1 and i == 0:
            notes.append(
                f"both 'ccv3' and 'chara' chunks present: used 'ccv3' ({card.kind}); 'chara' is its older copy"
            )
        if keyword == "ccv3" and card.kind != "v3":
            notes.append(f"the 'ccv3' chunk holds a {card.kind} card, not chara_card_v3")
        card.notes = notes + card.notes
        return card
    raise AssertionError("unreachable")


def read_card_bytes(data: bytes, filename: str) -> RawCard:
    """Decode and classify a card file's bytes (PNG, JSON or YAML; chosen by content, then by name)."""
    source = PurePath(filename).name or "card"
    suffix = PurePath(filename).suffix.lower()
    if len(data) > MAX_CARD_BYTES:
        raise card_error(source, f"file is {len(data):,} bytes; a character card may be at most {MAX_CARD_BYTES:,}")
    if not data.strip():
        raise card_error(source, "file is empty")
    if is_png(data):
        return read_png(data, source)
    if suffix == ".png":
        raise card_error(source, "not a PNG file (the PNG signature is missing); is it a renamed JPEG or WebP?")
    if len(data) > MAX_CARD_TEXT:
        raise card_error(source, f"file is {len(data):,} bytes; card JSON or YAML may be at most {MAX_CARD_TEXT:,}")
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise card_error(
            source, "not a character card: expected a PNG card, card JSON or character YAML (UTF-8 text)"
        ) from None
    if suffix == ".json" or (suffix not in (".yaml", ".yml") and text.lstrip().startswith("{")):
        return classify(_json_object(text, source, ""), source, "JSON")
    doc = load_yaml_bytes(data, source, max_bytes=MAX_CARD_TEXT)
    if not isinstance(doc.data, dict):
        raise card_error(source, "a character YAML file must be a mapping with 'name', 'greeting', 'context'")
    return classify(doc.data, source, "YAML", yaml_file=True)
