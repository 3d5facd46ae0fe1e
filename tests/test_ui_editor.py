"""The UI's library layer without a model: persona editor, probe/guard renderings, chat export/import."""

from __future__ import annotations

import json
import re
import threading

import pytest

from playground.chat.session import ChatResult, StreamEvent
from playground.definitions.personas import SHIPPED_PERSONAS, Catalog
from playground.errors import PlaygroundError, ValidationError
from playground.guard.policy import Policy, SignalRule
from playground.ui import editor_logic as editor
from playground.ui import plots
from playground.ui.live_reply import LiveReply
from playground.ui.transcript import parse_transcript

from .conftest import FIXTURES

PIRATE = (SHIPPED_PERSONAS / "pirate.yaml").read_text(encoding="utf-8")


def _line_of(text: str, prefix: str | None) -> int:
    """1-based number of the line starting with ``prefix`` (None: the line after the end)."""
    lines = text.splitlines()
    return len(lines) + 1 if prefix is None else next(i for i, ln in enumerate(lines, 1) if ln.startswith(prefix))


@pytest.fixture()
def catalog(tmp_path):
    """Shipped personas plus a writable folder of the user's own (the editor only writes there)."""
    return Catalog([SHIPPED_PERSONAS, tmp_path])


# -- validation ---------------------------------------------------------------------------------------------
def test_valid_text_gives_a_persona(catalog):
    check = editor.check_text(catalog, PIRATE, "pirate.yaml")
    assert check.ok and check.persona is not None and check.persona.name == "Captain Rook"


@pytest.mark.parametrize(
    ("edit", "line", "message"),
    [
        (lambda t: t.replace("steering: {}", "steering: {humorous: 5}"), "steering:", "at most 2"),
        (lambda t: t.replace("[caretaker]", "[carekeeper]"), "role_models:", "did you mean 'caretaker'"),
        (lambda t: t.replace("description:", "descripton:"), "description:", "did you mean 'description'"),
        (lambda t: t.replace("tags: [character, demo, funny]", "tags: [character, demo"), "tags:", "YAML"),
        (lambda t: t + "name: Again\n", None, "duplicate key 'name'"),
    ],
)
def test_invalid_edit_is_located(catalog, edit, line, message):
    text = edit(PIRATE)
    line = _line_of(PIRATE, line)
    check = editor.check_text(catalog, text, "pirate.yaml")
    assert not check.ok and check.persona is None
    issue = next(i for i in check.issues if message in i.message)
    assert issue.line == line or (message == "YAML" and abs(issue.line - line) <= 1), (issue, line)
    rendered = editor.issues_html(check.issues, text)
    assert f"Line {issue.line}, column {issue.column}" in rendered
    assert "<script" not in rendered


def test_issues_html_escapes_the_text(catalog):
    text = PIRATE + "name: <script>alert(1)</script>\n"
    rendered = editor.issues_html(editor.check_text(catalog, text, "p.yaml").issues, text)
    assert "<script>" not in rendered and "&lt;script&gt;" in rendered


@pytest.mark.parametrize("text", ["", "- just\n- a list\n", "42", "\x00\x01", "a: [" * 200, "{{{{"])
def test_garbage_never_raises(catalog, text):
    check = editor.check_text(catalog, text, "x.yaml")
    assert not check.ok
    editor.issues_html(check.issues, text)


# -- saving -------------------------------------------------------------------------------------------------
def test_save_writes_valid_yaml_into_the_writable_folder_only(catalog, tmp_path):
    saved = editor.save_persona(catalog, "pirate", PIRATE.replace("Captain Rook", "Captain Hook"))
    assert saved.path == (tmp_path / "pirate.yaml").resolve()
    assert "takes precedence" in saved.message  # a copy that overrides the shipped file, which is untouched
    assert (SHIPPED_PERSONAS / "pirate.yaml").read_text(encoding="utf-8") == PIRATE
    assert catalog.persona("pirate").name == "Captain Hook"


def test_invalid_text_never_replaces_a_valid_file(catalog, tmp_path):
    editor.save_persona(catalog, "mine", PIRATE)
    before = (tmp_path / "mine.yaml").read_bytes()
    with pytest.raises(ValidationError) as info:
        editor.save_persona(catalog, "mine", PIRATE.replace("steering: {}", "steering: {evil: 9}"))
    assert info.value.issues[0].line == _line_of(PIRATE, "steering:")
    assert (tmp_path / "mine.yaml").read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))  # no temp files left behind


@pytest.mark.parametrize(
    ("name", "stem"),
    [("../../etc/passwd", "etc_passwd"), ("My Persona!", "my_persona"), ("a/b\\c.yaml", "a_b_c_yaml")],
)
def test_names_are_sanitised(catalog, tmp_path, name, stem):
    saved = editor.save_persona(catalog, name, PIRATE, new=True)
    assert saved.persona_id == stem and saved.path.parent == tmp_path.resolve()


@pytest.mark.parametrize("name", ["", "...", "///", "  "])
def test_unusable_names_are_refused(catalog, name):
    with pytest.raises(PlaygroundError):
        editor.save_persona(catalog, name, PIRATE, new=True)


def test_save_as_never_replaces_an_existing_persona(catalog, tmp_path):
    with pytest.raises(PlaygroundError, match="already exists"):
        editor.save_persona(catalog, "pirate", PIRATE, new=True)
    editor.save_persona(catalog, "fresh", PIRATE, new=True)
    with pytest.raises(PlaygroundError, match="already exists"):
        editor.save_persona(catalog, "fresh", PIRATE.replace("Rook", "Hook"), new=True)
    assert "Rook" in (tmp_path / "fresh.yaml").read_text(encoding="utf-8")


def test_concurrent_saves_leave_one_complete_file(catalog, tmp_path):
    texts = [PIRATE.replace("Captain Rook", f"Captain {i}") for i in range(8)]
    threads = [threading.Thread(target=editor.save_persona, args=(catalog, "race", t)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    target = tmp_path / "race.yaml"
    assert target.read_text(encoding="utf-8") in [editor.with_schema_line(t, target) for t in texts]


def test_template_is_valid_and_a_bad_file_on_disk_opens_with_its_problems(catalog, tmp_path):
    assert editor.check_text(catalog, editor.TEMPLATE, "new.yaml").ok
    (tmp_path / "broken.yaml").write_bytes((FIXTURES / "bad" / "wrong_types.yaml").read_bytes())
    (tmp_path / "latin.yaml").write_bytes((FIXTURES / "bad" / "latin1.yaml").read_bytes())
    (tmp_path / "nul.yaml").write_bytes(b"name: a\x00b\ndescription: x\nsystem_prompt: y\n")  # reader error
    choices = dict(editor.file_choices(catalog))
    labels = {v: k for k, v in choices.items()}
    assert "invalid" in labels["broken"] and "invalid" in labels["nul"] and "Captain Rook" in labels["pirate"]
    text, _, note = editor.read_persona_text(catalog, "broken")
    assert not editor.check_text(catalog, text, "broken.yaml").ok and not note
    text, _, note = editor.read_persona_text(catalog, "latin")
    assert "not UTF-8" in note and "\ufffd" in text
    with pytest.raises(PlaygroundError, match="Reload"):
        editor.read_persona_text(catalog, "gone")


# -- uploads ------------------------------------------------------------------------------------------------
def test_upload_of_a_persona_yaml_and_of_a_card(catalog):
    text, pid, _ = editor.upload_to_text(catalog, PIRATE.encode(), "My Pirate.yaml")
    assert text == PIRATE and pid == "my_pirate"
    card = {
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": {
            "name": "Ada",
            "description": "A mathematician.",
            "first_mes": "Hello!",
            "personality": "curious",
            "scenario": "",
            "mes_example": "",
        },
    }
    text, pid, message = editor.upload_to_text(catalog, json.dumps(card).encode(), "ada.json")
    assert pid == "ada" and editor.check_text(catalog, text, "ada.yaml").ok and "not saved" in message


@pytest.mark.parametrize(
    ("data", "name"),
    [(b"\x89PNG\r\n\x1a\nnot really", "x.png"), (b"{oops", "x.json"), (b"[1, 2]", "x.json"), (b"\xff\xfe", "x.json")],
)
def test_malformed_uploads_are_errors_not_crashes(catalog, data, name):
    with pytest.raises(PlaygroundError):
        editor.upload_to_text(catalog, data, name)


# -- renderings ---------------------------------------------------------------------------------------------
def test_probe_bars_draw_thresholds_and_levels():
    policy = Policy("p", {"evil": SignalRule("evil", warn=2.0, act=4.0, action="cap")}, baseline="assistant")
    html = plots.probe_bars_html(
        {"evil": 4.5, "humorous": -1.0}, {"evil": 1.0}, plots.thresholds_from_policy(policy), n_tokens=3
    )
    assert html.count('class="pp-row"') == 2
    assert "pp-bar act" in html and "pp-bar neg" in html and "pp-thr act" in html and "pp-tick" in html
    assert "cap at 4.0" in html


def test_persona_room_moves_thresholds():
    policy = Policy("p", {"persona_drift": SignalRule("persona_drift", warn=3, act=5)}, baseline="persona")
    assert plots.thresholds_from_policy(policy, {"persona_drift": 2.0})["persona_drift"]["act"] == 7.0
    assert plots.thresholds_from_policy(policy, {"persona_drift": -2.0})["persona_drift"]["act"] == 5.0


def test_heatmap_has_one_hoverable_span_per_token_and_escapes():
    html = plots.token_heatmap_html(["<b>", " hi", "\n"], [3.0, -1.0, 0.0], "evil")
    spans = re.findall(r'<span class="t[^"]*" data-z="([-0-9.]+)" title="([^"]*)"', html)
    assert [float(z) for z, _ in spans] == [3.0, -1.0, 0.0]
    assert "evil +3.00 z" in spans[0][1]
    assert "<b>" not in html.replace("<b style", "")


def test_trend_and_guard_panels_render():
    assert "<polyline" in plots.trend_svg_html({"evil": [0.1, 2.0], "humorous": [1.0, 0.5]}, highlight="evil")
    assert "…" in plots.trend_svg_html({"evil": [0.1]}, live={"evil": 1.0})
    event = {
        "signal": "evil",
        "value": 4.3,
        "threshold": 4.0,
        "token_index": 7,
        "action": "cap",
        "phase": "reply",
        "level": "act",
        "attempt": 0,
    }
    alert = plots.guard_alerts_html([event])
    assert "evil 4.3 ≥ 4.0 at token 7: cap" in alert and "clamped" in alert
    assert "<td>evil</td>" in plots.guard_log_html([{**event, "turn": 2}])
    from playground.guard.policy import PolicyHolder

    table = plots.policy_html(PolicyHolder().policy, "Captain Rook")
    assert "persona_drift" in table and "counter_steer" in table


# -- live replies and chat transcripts ----------------------------------------------------------------------
def test_live_reply_folds_stream_events():
    live = LiveReply()
    live.feed(StreamEvent("token", "Hel", readout={"evil": 1.0}))
    live.feed(StreamEvent("token", "lo", readout={"evil": 3.0}, guard=[{"signal": "evil"}]))
    assert live.text == "Hello" and live.means() == {"evil": 2.0} and live.prompt_last() == {"evil": 1.0}
    live.feed(StreamEvent("reset"))
    assert live.text == "" and live.tokens == [] and live.attempts == 2 and live.events
    live.feed(StreamEvent("token", "Hi", readout={"evil": 0.5}))
    live.feed(StreamEvent("replace", "I stopped this reply."))
    assert live.blocked and live.text == "I stopped this reply." and live.tokens == ["Hi"]
    result = ChatResult("assistant", "m", "I stopped this reply.", ["I stopped this reply."])
    live.feed(StreamEvent("done", result=result))
    assert live.done and LiveReply.from_dict(json.loads(json.dumps(live.to_dict()))).to_dict() == live.to_dict()


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{not json",
        b"\xff\xfe\x00",
        b"[]",
        b'{"format": "something-else"}',
        b'{"format": "persona-playground-chat", "persona": "pirate", "turns": {}}',
        b'{"format": "persona-playground-chat", "persona": "pirate", "turns": [{"user": 1}]}',
        b'{"format": "persona-playground-chat", "persona": "", "turns": []}',
        b'{"format": "persona-playground-chat", "persona": "p", "turns": [{"user": "a", "assistant": "b", '
        b'"reply": {"readouts": [1, 2]}}]}',
        b" " * (3 * 1024 * 1024),
    ],
)
def test_malformed_chat_imports_are_refused(raw):
    with pytest.raises(PlaygroundError):
        parse_transcript(raw, "chat.json")


# -- the launcher -------------------------------------------------------------------------------------------
def test_launcher_options_and_bad_auth_fail_before_loading_the_model():
    import os
    import subprocess
    import sys

    from .conftest import REPO

    env = {**os.environ, "PLAYGROUND_THREADS": "1"}
    out = subprocess.run([sys.executable, "launch.py", "--help"], cwd=REPO, env=env, capture_output=True, text=True)
    assert out.returncode == 0
    for flag in ("--host", "--port", "--auth", "--share", "--concurrency", "--personas-dir"):
        assert flag in out.stdout
    assert "127.0.0.1" in out.stdout
    bad = subprocess.run(
        [sys.executable, "launch.py", "--auth", "nocolon"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "user:password" in bad.stderr and "loaded" not in bad.stdout


def test_the_persona_list_signature_changes_with_any_persona_file(tmp_path):
    import os

    from playground.definitions.personas import SHIPPED_PERSONAS, Catalog
    from playground.ui.editor_logic import file_choices
    from playground.ui.persona_lists import catalog_signature

    catalog = Catalog([SHIPPED_PERSONAS, tmp_path])
    first = catalog_signature(catalog)
    assert catalog_signature(catalog) == first
    f = tmp_path / "wren.yaml"
    f.write_text("name: Wren\ndescription: A keeper.\nsystem_prompt: You keep a lighthouse.\n", encoding="utf-8")
    added = catalog_signature(catalog)
    assert added != first and ("Wren (wren)", "wren") in file_choices(catalog)
    f.write_text("name: Wren\ndescription: A keeper.\nsystem_prompt: You keep a light.\n", encoding="utf-8")
    os.utime(f, ns=(1, 1))  # a rewrite, whatever the clock's resolution
    assert catalog_signature(catalog) not in (first, added)
    f.unlink()
    assert catalog_signature(catalog) == first


def test_a_saved_file_points_at_the_schema_from_where_it_lies(tmp_path):
    from playground.paths import REPO_ROOT
    from playground.ui.editor_logic import with_schema_line

    text = "# yaml-language-server: $schema=../schemas/persona.schema.json\nname: X\n"
    outside = with_schema_line(text, tmp_path / "x.yaml")
    assert outside == "name: X\n"  # no relative path from outside the checkout reaches the schema
    inside = with_schema_line(text, REPO_ROOT / "personas" / "x.yaml")
    assert inside == text
    deeper = with_schema_line(text, REPO_ROOT / "personas" / "mine" / "x.yaml")
    assert deeper.startswith("# yaml-language-server: $schema=../../schemas/persona.schema.json\n")
    assert with_schema_line("name: X\n", tmp_path / "x.yaml") == "name: X\n"
