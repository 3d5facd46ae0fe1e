"""Character cards: import (V1/V2/V3, JSON/PNG, text-generation-webui YAML), export, round trips, bad cards."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import pytest

from playground.cli.main import main
from playground.definitions.cards import (
    MAX_CARD_BYTES,
    card_json,
    card_png,
    import_card_bytes,
    import_card_file,
    import_upload,
    persona_to_card,
    read_card_bytes,
)
from playground.definitions.cards.export import avatar_png
from playground.definitions.cards.mapping import DEFAULT_HEADER
from playground.definitions.cards.png import text_chunks, with_text_chunks
from playground.definitions.personas import Catalog, Persona
from playground.definitions.yaml_source import parse_yaml
from playground.errors import PlaygroundError, ValidationError
from playground.evals.shared_data import shared_data_dir
from playground.prompt.conversation import plan_prompt

from .conftest import REPO
from .test_conversation import WordBackend

CARDS = shared_data_dir() / "cards"
REAL_CARDS = sorted([*CARDS.rglob("*.png"), *CARDS.rglob("*.json")])


@pytest.fixture(scope="module")
def catalog():
    return Catalog()


def _png_with(texts: dict[str, str]) -> bytes:
    return with_text_chunks(avatar_png("Test"), texts)


def _b64(obj: object) -> str:
    return base64.b64encode(json.dumps(obj).encode("utf-8")).decode("ascii")


def _same(a: Persona, b: Persona) -> None:
    assert dataclasses.replace(a, path=None) == dataclasses.replace(b, path=None)


V2_CARD = {
    "spec": "chara_card_v2",
    "spec_version": "2.0",
    "data": {
        "name": "Mira Vance",
        "description": "{{char}} keeps the lighthouse on Gull Rock.",
        "personality": "calm, dry humour",
        "scenario": "A storm is coming in.",
        "first_mes": "Evening, {{user}}. Mind the wet stairs.",
        "alternate_greetings": ["Back again, {{user}}?", "*{{char}} trims the lamp.*"],
        "mes_example": (
            "<START>\n{{user}}: Is the lamp lit?\n{{char}}: Always, by dusk.\n"
            "{{user}}: Why?\n{{char}}: Ships.\nThey need it.\n"
            "<START>\n{{char}}: *hums*\n{{user}}: Nice tune.\nMira Vance: My mother's."
        ),
        "system_prompt": "{{original}} Speak in short sentences.",
        "post_history_instructions": "Stay in character as {{char}}.",
        "creator_notes": "Best with a stormy opening.",
        "creator": "tester",
        "character_version": "1.2",
        "tags": ["lighthouse", "calm"],
        "extensions": {"depth_prompt": {"prompt": "x", "depth": 4}},
        "character_book": {
            "name": "Gull Rock",
            "scan_depth": 2,
            "extensions": {"note": 1},
            "entries": [
                {
                    "keys": ["Fresnel"],
                    "content": "The Fresnel lens was cast in 1871.",
                    "extensions": {},
                    "enabled": True,
                    "insertion_order": 5,
                    "id": 1,
                },
                {
                    "keys": ["ghost"],
                    "secondary_keys": ["keeper"],
                    "selective": True,
                    "content": "The old keeper's ghost walks the gallery.",
                    "extensions": {"probability": 100},
                    "enabled": True,
                    "insertion_order": 1,
                    "position": "before_char",
                    "comment": "ghost",
                },
                {
                    "keys": [],
                    "constant": True,
                    "content": "Gull Rock is a tidal island.",
                    "enabled": True,
                    "insertion_order": 9,
                },
                {"keys": ["boat"], "content": "never inserted", "enabled": False, "insertion_order": 2},
            ],
        },
    },
}


def test_v2_card_maps_every_field(catalog):
    result = import_card_bytes(json.dumps(V2_CARD).encode(), "mira.json", catalog)
    p = result.persona
    assert p.id == "mira_vance" and p.name == "Mira Vance"
    parts = p.system_prompt.split("\n\n")
    assert parts[0] == DEFAULT_HEADER + " Speak in short sentences."
    assert parts[1:] == [
        "{{char}} keeps the lighthouse on Gull Rock.",
        "{{char}}'s personality: calm, dry humour",
        "Scenario: A storm is coming in.",
    ]
    assert p.description == "Mira Vance keeps the lighthouse on Gull Rock."
    assert p.greeting == "Evening, {{user}}. Mind the wet stairs."
    assert p.alternate_greetings == ("Back again, {{user}}?", "*{{char}} trims the lamp.*")
    assert [(e.user, e.assistant) for e in p.examples] == [
        ("Is the lamp lit?", "Always, by dusk."),
        ("Why?", "Ships.\nThey need it."),
        ("Nice tune.", "My mother's."),
    ]
    assert p.post_history_instructions == "Stay in character as {{char}}."
    assert p.tags == ("lighthouse", "calm")
    book = p.lorebook
    assert book is not None and book.name == "Gull Rock" and book.scan_depth == 2
    assert book.extras == {"extensions": {"note": 1}}
    fresnel, ghost, constant, disabled = book.entries
    assert fresnel.keys == ("Fresnel",) and fresnel.insertion_order == 5 and fresnel.extras == {"id": 1}
    assert ghost.selective and ghost.secondary_keys == ("keeper",) and ghost.position == "before_char"
    assert ghost.extras == {"extensions": {"probability": 100}}
    assert constant.constant and not disabled.enabled
    # nothing silently dropped: what has no home is under extras, and reported
    assert p.extras["creator_notes"] == "Best with a stormy opening."
    assert p.extras["creator"] == "tester" and p.extras["character_version"] == "1.2"
    assert p.extras["extensions"] == {"depth_prompt": {"prompt": "x", "depth": 4}}
    assert p.extras["mes_example"] == V2_CARD["data"]["mes_example"]  # the char-first line did not fit
    report = result.report
    assert {"creator_notes", "creator", "character_version", "extensions", "mes_example"} <= set(report.extras)
    assert ("character_book", "lorebook (4 entries)") in report.mapped
    assert any("opens the block" in n for n in report.notes)
    assert result.yaml_text.startswith("# yaml-language-server: $schema=../schemas/persona.schema.json\n")


def test_lorebook_entries_are_inserted_when_their_keys_come_up(catalog):
    persona = import_card_bytes(json.dumps(V2_CARD).encode(), "mira.json", catalog).persona
    backend = WordBackend(4000)

    def system(message: str, history=()) -> str:
        plan = plan_prompt(backend, persona, persona.system_prompt, list(history), message, 10)
        return plan.messages[0].content

    quiet = system("Good evening")
    assert "tidal island" in quiet  # constant
    assert "Fresnel lens" not in quiet and "ghost walks" not in quiet and "never inserted" not in quiet
    assert "Fresnel lens was cast" in system("Tell me about the fresnel lens")  # case-insensitive
    assert "Fresnel lens was cast" not in system("Fresnelish things")  # whole words only
    assert "ghost walks" not in system("Is there a ghost?")  # selective: needs a secondary key too
    haunted = system("Is there a ghost of a keeper?")
    assert haunted.index("ghost walks") < haunted.index("Mira Vance keeps")  # before_char
    assert haunted.index("Mira Vance keeps") < haunted.index("tidal island")  # after_char
    # scan_depth 2: the key four messages back no longer counts
    from playground.prompt.conversation import Turn

    old = [Turn("the fresnel lens?", "Yes."), Turn("And then?", "Then dusk.")]
    assert "Fresnel lens was cast" not in system("ok", old)
    assert "Fresnel lens was cast" in system("ok", [Turn("And then?", "We polish the fresnel daily.")])


def test_post_history_instructions_follow_the_user_message(catalog):
    persona = import_card_bytes(json.dumps(V2_CARD).encode(), "mira.json", catalog).persona
    plan = plan_prompt(WordBackend(4000), persona, persona.system_prompt, [], "hello", 10)
    assert [m.role for m in plan.messages] == ["system", "user", "system"]
    assert plan.messages[-1].content == "Stay in character as Mira Vance."
    assert "{{" not in plan.messages[0].content


def test_strict_templates_fold_post_history_instructions_into_the_user_turn(catalog):
    from playground.prompt.chat_template import ChatTemplate

    persona = import_card_bytes(json.dumps(V2_CARD).encode(), "mira.json", catalog).persona
    backend = WordBackend(4000)
    backend.template = ChatTemplate(
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
        "<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
    )
    plan = plan_prompt(backend, persona, persona.system_prompt, [], "hello", 10)
    assert plan.tokens


def test_v1_card_with_legacy_placeholders(catalog):
    card = {
        "name": "Old Tom",
        "description": "<BOT> is a ferryman.",
        "personality": "gruff",
        "scenario": "",
        "first_mes": "Fare, <USER>?",
        "mes_example": "<START>\n<USER>: Hi\n<BOT>: Fare first.",
        "metadata": {"tool": "x"},
    }
    result = import_card_bytes(json.dumps(card).encode(), "tom.json", catalog)
    p = result.persona
    assert "{{char}} is a ferryman." in p.system_prompt and "Scenario" not in p.system_prompt
    assert p.greeting == "Fare, {{user}}?"
    assert [(e.user, e.assistant) for e in p.examples] == [("Hi", "Fare first.")]
    assert p.extras == {"metadata": {"tool": "x"}}
    assert "scenario" in result.report.empty
    assert any("<BOT>/<USER>" in n for n in result.report.notes)
    assert result.report.format.startswith("V1")


def _v3_card(name: str) -> dict:
    return {
        "spec": "chara_card_v3",
        "spec_version": "3.0",
        "data": {
            "name": name,
            "description": "{{char}} maps the stars.",
            "first_mes": "Look up, {{user}}.",
            "nickname": "Ves",
            "group_only_greetings": ["Hello, all."],
            "creation_date": 1700000000,
            "assets": [{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}],
            "character_book": {
                "entries": [
                    {
                        "keys": ["/comet\\w*/i"],
                        "use_regex": True,
                        "content": "Comets return.",
                        "enabled": True,
                        "insertion_order": 0,
                    }
                ]
            },
            "extensions": {},
        },
    }


def test_v3_in_ccv3_chunk_is_preferred_over_chara(catalog):
    v2_copy = {"spec": "chara_card_v2", "spec_version": "2.0", "data": {"name": "Old Copy", "description": "x"}}
    png = _png_with({"chara": _b64(v2_copy), "ccv3": _b64(_v3_card("Vesper"))})
    result = import_card_bytes(png, "vesper.png", catalog)
    p = result.persona
    assert p.name == "Vesper" and result.report.format.startswith("chara_card_v3 3.0 (PNG, 'ccv3'")
    assert any("both 'ccv3' and 'chara'" in n for n in result.report.notes)
    assert {"nickname", "group_only_greetings", "creation_date", "assets"} <= set(p.extras)
    (entry,) = p.lorebook.entries
    assert entry.use_regex
    plan = plan_prompt(WordBackend(4000), p, p.system_prompt, [], "I saw COMETS!", 10)
    assert "Comets return." in plan.messages[0].content


def test_compressed_itxt_chunk_and_other_text_chunks(catalog):
    import struct
    import zlib

    def chunk(ctype: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + ctype + payload + struct.pack(">I", zlib.crc32(ctype + payload))

    card = _b64({"name": "Zed", "description": "d"}).encode()
    itxt = chunk(b"iTXt", b"chara\0\x01\x00\0\0" + zlib.compress(card))
    png = with_text_chunks(avatar_png("z"), {"Comment": "hello"})
    png = png[:33] + itxt + png[33:]  # right after IHDR
    assert import_card_bytes(png, "z.png", catalog).persona.name == "Zed"
    with pytest.raises(ValidationError, match="text chunks present: 'Comment'"):
        import_card_bytes(with_text_chunks(avatar_png("z"), {"Comment": "hello"}), "c.png", catalog)


def test_broken_ccv3_falls_back_to_chara_and_says_so(catalog):
    png = _png_with({"chara": _b64(_v3_card("Vesper")), "ccv3": "%%%not base64%%%"})
    result = import_card_bytes(png, "v.png", catalog)
    assert result.persona.name == "Vesper"
    assert any("'ccv3' chunk could not be read" in n for n in result.report.notes)


TGW_OLD = """\
char_name: Chiharu
char_persona: Cheerful tech enthusiast.
char_greeting: "*waves* Hi <USER>!"
world_scenario: A cafe in Tokyo.
example_dialogue: |-
  {{user}}: Favourite gadget?
  {{char}}: My soldering iron!
your_name: Anon
"""


def test_tgw_yaml_with_old_aliases(catalog):
    result = import_card_bytes(TGW_OLD.encode(), "chiharu.yaml", catalog)
    p = result.persona
    assert p.name == "Chiharu" and p.greeting == "*waves* Hi {{user}}!"
    assert "{{char}}'s personality: Cheerful tech enthusiast." in p.system_prompt
    assert p.system_prompt.endswith("Scenario: A cafe in Tokyo.")
    assert [(e.user, e.assistant) for e in p.examples] == [("Favourite gadget?", "My soldering iron!")]
    assert p.extras == {"your_name": "Anon"}
    mapped = dict(result.report.mapped)
    assert mapped["char_name"] == "name" and mapped["char_greeting"] == "greeting"
    assert mapped["char_persona"].startswith("system_prompt") and mapped["example_dialogue"] == "examples (1)"


def test_tgw_yaml_new_style(catalog):
    text = "name: Bo\ngreeting: Hey.\ncontext: |\n  Bo is a barista.\n  {{char}} loves espresso.\n"
    p = import_card_bytes(text.encode(), "bo.yml", catalog).persona
    assert p.system_prompt == DEFAULT_HEADER + "\n\nBo is a barista.\n{{char}} loves espresso."
    assert p.greeting == "Hey." and not p.extras


def test_name_in_another_script_gets_an_id_from_the_file_name(catalog):
    result = import_card_bytes(json.dumps({"name": "さくら", "first_mes": "こんにちは"}).encode(), "Sakura v2.json")
    assert result.persona_id == "sakura_v2" and result.persona.name == "さくら"
    assert any("file name" in n for n in result.report.notes)


def test_upload_function_for_the_ui(catalog):
    text, report = import_upload(TGW_OLD.encode(), "chiharu.yaml", catalog)
    assert catalog.parse_persona_text(text, "chiharu.yaml").name == "Chiharu"
    assert report.persona_id == "chiharu" and "\n" in str(report)


# -- round trips ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona_id", sorted(Catalog().persona_files()))
def test_round_trip_persona_to_v2_png_and_back(persona_id, catalog):
    original = catalog.persona(persona_id)
    png = card_png(original)
    card = json.loads(base64.b64decode(next(c.text for c in text_chunks(png, limit=10**7) if c.keyword == "chara")))
    assert card["spec"] == "chara_card_v2" and card["data"]["system_prompt"] == original.system_prompt
    back = import_card_bytes(png, f"{persona_id}.png", catalog, persona_id=persona_id).persona
    _same(back, original)


def test_schema_line_is_relative_to_where_the_persona_is_written():
    from playground.definitions.cards.importer import schema_comment

    assert (
        schema_comment(REPO / "personas" / "x.yaml") == "# yaml-language-server: $schema=../schemas/persona.schema.json"
    )
    assert schema_comment(REPO / "personas" / "mine" / "x.yaml").endswith("=../../schemas/persona.schema.json")
    assert schema_comment(Path("/nowhere/x.yaml")) == ""


def test_round_trip_keeps_lorebook_phi_and_extras(catalog):
    original = import_card_bytes(json.dumps(V2_CARD).encode(), "mira.json", catalog).persona
    for data, name in ((card_png(original), "m.png"), (card_json(original), "m.json")):
        back = import_card_bytes(data, name, catalog, persona_id=original.id).persona
        _same(back, original)
    exported = persona_to_card(original)["data"]
    assert exported["creator"] == "tester" and exported["mes_example"] == V2_CARD["data"]["mes_example"]


@pytest.mark.parametrize("path", REAL_CARDS, ids=lambda p: p.name)
def test_real_card_round_trips(path, catalog):
    imported = import_card_bytes(path.read_bytes(), path.name, catalog).persona
    back = import_card_bytes(card_png(imported), "x.png", catalog, persona_id=imported.id).persona
    _same(back, imported)


# -- real cards from ../shared/data/cards ----------------------------------------------------------------------


def test_real_cards_are_present():
    assert CARDS.is_dir(), f"{CARDS}: shared character cards not found (set PLAYGROUND_SHARED_DATA)"
    assert len(REAL_CARDS) >= 4


@pytest.mark.parametrize("path", REAL_CARDS, ids=lambda p: p.name)
def test_real_card_imports_validates_and_chats(path, catalog, playground, tmp_path):
    out = tmp_path / "card.yaml"
    result = import_card_file(path, out, catalog=catalog)
    assert out.read_text(encoding="utf-8") == result.yaml_text
    assert catalog.load_persona_path(out) == dataclasses.replace(result.persona, id="card", path=out)
    assert result.report.mapped and result.persona.greeting
    reply = playground.session(result.persona).send("Who are you?", max_tokens=12, temperature=0)
    assert reply.reply.strip() and reply.prompt_tokens > 100


def test_chat_with_a_lorebook_card(playground, catalog):
    persona = import_card_bytes(json.dumps(V2_CARD).encode(), "mira.json", catalog).persona
    result = playground.session(persona).send("Tell me about the Fresnel lens.", max_tokens=8, temperature=0)
    assert result.reply.strip()


# -- bad cards: a clear error, nothing written ---------------------------------------------------------------

_PNG = avatar_png("x")
BAD_CARDS = {
    "no_chunk.png": (_PNG, "no 'chara' or 'ccv3' text chunk"),
    "bad_base64.png": (with_text_chunks(_PNG, {"chara": "@@@ not base64 @@@"}), "not valid base64"),
    "bad_json.png": (with_text_chunks(_PNG, {"chara": base64.b64encode(b"{oops").decode()}), "invalid JSON"),
    "bad_json.json": (b'{"name": "x",\n  "description": }', "invalid JSON"),
    "wrong_spec.json": (json.dumps({"spec": "chara_card_v9", "data": {"name": "x"}}).encode(), "unsupported card spec"),
    "no_data.json": (json.dumps({"spec": "chara_card_v2"}).encode(), "needs a 'data' object"),
    "no_name.json": (json.dumps({"spec": "chara_card_v2", "data": {"description": "x"}}).encode(), "no character name"),
    "list.json": (b"[1, 2]", "must be an object"),
    "not_png.png": (b"\xff\xd8\xff\xe0JFIF" + b"\0" * 100, "not a PNG"),
    "truncated.png": (_PNG[: len(_PNG) // 2], "truncated"),
    "corrupt.png": (_PNG[:40] + bytes([_PNG[40] ^ 0xFF]) + _PNG[41:], "CRC mismatch"),
    "binary.bin": (b"\x00\x01\x02\xff" * 10, "expected a PNG card"),
    "empty.json": (b"", "file is empty"),
}


@pytest.mark.parametrize("name", sorted(BAD_CARDS))
def test_bad_cards_give_a_clear_error_and_write_nothing(name, tmp_path, catalog):
    data, expected = BAD_CARDS[name]
    src = tmp_path / "in" / name
    src.parent.mkdir()
    src.write_bytes(data)
    out_dir = tmp_path / "out"
    with pytest.raises(ValidationError) as err:
        import_card_file(src, out_dir / "x.yaml", catalog=catalog)
    issue = err.value.issues[0]
    assert issue.file == name and expected in issue.message, str(err.value)
    assert not out_dir.exists()


def test_card_too_big_for_a_persona_file_is_refused(tmp_path, catalog):
    src = tmp_path / "big.json"
    src.write_text(json.dumps({"name": "Big", "description": "word " * 60_000}))
    with pytest.raises(ValidationError, match="imported persona: file is .* the limit is"):
        import_card_file(src, tmp_path / "big.yaml", catalog=catalog)
    assert not (tmp_path / "big.yaml").exists()


def test_invalid_json_points_at_line_and_column():
    with pytest.raises(ValidationError) as err:
        read_card_bytes(b'{"name": "x",\n  "description": }', "c.json")
    (issue,) = err.value.issues
    assert (issue.line, issue.column) == (2, 18)


def test_huge_file_is_refused_before_reading_it_all(tmp_path, catalog):
    src = tmp_path / "huge.png"
    with src.open("wb") as fh:
        fh.truncate(MAX_CARD_BYTES + 1)
    with pytest.raises(ValidationError, match="at most"):
        import_card_file(src, tmp_path / "x.yaml", catalog=catalog)
    assert not (tmp_path / "x.yaml").exists()


# -- command line --------------------------------------------------------------------------------------------


def test_cli_import_never_overwrites_without_force(tmp_path, capsys):
    src = tmp_path / "mira.json"
    src.write_text(json.dumps(V2_CARD))
    out = tmp_path / "mira.yaml"
    assert main(["import", str(src), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "first_mes" in printed and "-> greeting" in printed and "kept under extras" in printed
    first = out.read_text()
    out.write_text(first + "# my edit\n")
    assert main(["import", str(src), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert out.read_text().endswith("# my edit\n")
    assert main(["import", str(src), "--out", str(out), "--force"]) == 0
    assert out.read_text() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mira.json", "mira.yaml"]  # no temp files left


def test_cli_import_default_target_uses_sanitized_name(tmp_path):
    src = tmp_path / "c.json"
    src.write_text(json.dumps({"name": "../../Evil Name!", "description": "d", "first_mes": "hi"}))
    catalog = Catalog([REPO / "personas", tmp_path / "mine"])
    result = import_card_file(src, catalog=catalog)
    assert Path(result.report.written_to) == tmp_path / "mine" / "evil_name.yaml"
    with pytest.raises(PlaygroundError, match="already exists"):
        import_card_file(src, catalog=catalog)


def test_cli_bad_card_exits_1_with_located_message(tmp_path, capsys):
    src = tmp_path / "bad.png"
    src.write_bytes(_PNG)
    assert main(["import", str(src), "--out", str(tmp_path / "bad.yaml")]) == 1
    assert capsys.readouterr().err.startswith("bad.png:1:1: no character data in this PNG")
    assert not (tmp_path / "bad.yaml").exists()


def test_cli_export_card_png_and_json(tmp_path, catalog):
    png, js = tmp_path / "rook.png", tmp_path / "rook.json"
    assert main(["export-card", "pirate", "--format", "png", "--out", str(png)]) == 0
    assert main(["export-card", "pirate", "--out", str(js)]) == 0
    assert main(["export-card", "pirate", "--out", str(js)]) == 2  # exists
    from PIL import Image

    with Image.open(png) as im:
        assert im.format == "PNG" and "chara" in im.info
    assert json.loads(js.read_text())["spec"] == "chara_card_v2"
    for path in (png, js):
        back = import_card_bytes(path.read_bytes(), path.name, catalog, persona_id="pirate").persona
        _same(back, catalog.persona("pirate"))


def test_yaml_output_is_plain_safe_yaml(catalog):
    result = import_card_bytes(json.dumps(V2_CARD).encode(), "mira.json", catalog)
    doc = parse_yaml(result.yaml_text, "x.yaml")
    assert doc.data["lorebook"]["entries"][0]["keys"] == ["Fresnel"]
    assert "!!" not in result.yaml_text
