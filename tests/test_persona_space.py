"""Persona space (issue 22, first slice): the characters file, the space built on a tiny model, and every reply of
the real default model placed on the shipped map (live, as the reply streams, equal to the offline placement)."""

from __future__ import annotations

import numpy as np
import pytest

from playground.backends.base import Steering
from playground.definitions.personas import Catalog
from playground.errors import ValidationError
from playground.steering.persona_space import (
    KEEP,
    PersonaSpace,
    all_characters,
    build_space,
    load_characters,
    load_space,
)

from .tiny_model import save_tiny_llama


def test_the_shipped_characters_are_many_and_varied():
    questions, written = load_characters()
    _, everyone = all_characters(Catalog())
    assert len(questions) >= 3 and len(written) >= 50 and len(everyone) >= 60
    assert len({c.id for c in everyone}) == len(everyone)
    kinds = {c.kind for c in everyone}
    assert {"profession", "fiction", "mood", "persona", "role_model", "assistant_like"} <= kinds


def test_a_malformed_characters_file_names_file_line_and_column(tmp_path):
    bad = tmp_path / "characters.yml"
    bad.write_text(
        'questions: ["Hi?"]\ncharacters:\n  - {id: a, kind: mood, prompt: "You are calm."}\n'
        "  - {id: b, kind: mood}\n  - {id: a, kind: mood, prompt: 'Again.'}\n"
    )
    with pytest.raises(ValidationError) as err:
        load_characters(bad)
    text = "\n".join(str(i) for i in err.value.issues)
    assert f"{bad}:4:" in text and "character 2 needs id, kind and prompt" in text
    assert f"{bad}:5:" in text and "repeats the id 'a'" in text


@pytest.mark.usefixtures("torch_on_one_thread")
def test_a_space_on_a_tiny_model_is_orthonormal_places_its_own_characters_and_round_trips(tmp_path):
    from playground.backends.model_source import ModelSource
    from playground.backends.transformers import TransformersBackend

    backend = TransformersBackend(ModelSource("hf", save_tiny_llama(tmp_path / "tiny"), "tiny-llama"))
    small = tmp_path / "chars.yml"
    small.write_text(
        'questions: ["What do you like?", "Where do you live?"]\ncharacters:\n'
        '  - {id: cook, kind: profession, prompt: "You are a cook."}\n'
        '  - {id: knight, kind: fiction, prompt: "You are a knight of old."}\n'
    )
    space = build_space(backend, Catalog(), 1, steer=lambda _s: Steering(), path=small, progress=False,
                        log=lambda _m: None)  # fmt: skip
    n = len(space.ids)
    assert n == 2 + len(Catalog().persona_files()) + len(Catalog().role_model_files())
    kept = min(KEEP, n)
    pcs = np.asarray(space.meta["pca_components"])
    assert pcs.shape == (kept, 32) and space.components.shape == (kept, 32)
    assert np.allclose(pcs @ pcs.T, np.eye(kept), atol=1e-6)
    assert sum(space.explained) == pytest.approx(1.0, abs=1e-4)
    assert space.explained == sorted(space.explained, reverse=True)
    for check in space.meta["placement"].values():
        assert 0 <= check["top1"] <= check["top3"] <= 1 and check["chance_top1"] == round(1 / n, 3)
    near = space.place_coords(space.coords[1])
    assert near["nearest"][0] == "knight" and near["x"] == pytest.approx(space.coords[1, 0], abs=1e-3)
    again = PersonaSpace.from_json(space.to_json())
    assert again.ids == space.ids and np.allclose(again.coords, space.coords)


@pytest.mark.model
def test_every_reply_of_the_default_model_is_placed_on_the_shipped_map(playground, real_backend):
    space = load_space(real_backend.model_id)
    assert space is not None, "models/smollm2-135m/space is shipped (python -m playground persona-space --ship)"
    result = playground.chat("pirate", "What do you usually eat for breakfast?", max_tokens=24, temperature=0)
    placed = result.to_dict()["persona_map"]
    assert set(placed) == {"x", "y", "nearest"} and len(placed["nearest"]) == 3
    assert set(placed["nearest"]) <= set(space.ids)
    # the live placement (accumulated token by token while streaming) equals placing the teacher-forced rows
    from playground.prompt.conversation import plan_prompt

    session = playground.session("pirate")
    prompt = plan_prompt(real_backend, session.persona, session.system_prompt, [],
                         "What do you usually eat for breakfast?", 24).tokens  # fmt: skip
    reply = real_backend.tokenize(result.reply)
    rows = real_backend.hidden_states(prompt + reply, [space.layer], start=len(prompt) - 1)[space.layer]
    offline = space.place(rows[: len(reply)])
    assert offline["nearest"][0] == placed["nearest"][0]
    assert (offline["x"], offline["y"]) == pytest.approx((placed["x"], placed["y"]), abs=0.5)


def test_the_map_point_moves_with_every_streamed_token_and_ends_where_the_reply_is_placed(playground):
    events = list(playground.session("pirate").stream("Tell me about your ship.", max_tokens=16, temperature=0))
    points = [e.point for e in events if e.kind == "token"]
    result = events[-1].result
    assert len(points) >= 8 and all(p is not None for p in points)
    assert len(set(points)) > len(points) // 2  # it moves as the reply is written
    if result.finish_reason == "length":  # no text held back by the stop-string scanner: the same rows
        placed = result.persona_map
        assert points[-1] == pytest.approx((placed["x"], placed["y"]), abs=2e-3)


def test_the_map_draws_characters_the_conversation_and_the_reply_being_written():
    from playground.ui.live_reply import LiveReply
    from playground.ui.map_view import reply_point
    from playground.ui.persona_map_plot import Character, MapPoint, persona_map_svg_html

    chars = [Character("persona:pirate", "persona", 1.0, 2.0), Character("farmer", "profession", -1.0, 0.5),
             Character("role_model:anchor", "role_model", 0.0, -1.0)]  # fmt: skip
    done = LiveReply(result={"persona_map": {"x": 0.5, "y": 1.0, "nearest": ["persona:pirate", "farmer"]}})
    writing = LiveReply(point=(-0.5, 0.2))
    points = [reply_point(done, "1"), reply_point(writing, "2")]
    assert [p.kind for p in points] == ["turn", "live"] and points[0].nearest == ("persona:pirate", "farmer")
    html = persona_map_svg_html(chars, points, selected={"persona:pirate"}, caption="c")
    assert html.count("<circle") == 5 and '<polyline class="trail"' in html
    assert ">pirate</text>" in html and ">anchor</text>" in html and ">farmer</text>" not in html  # named kinds only
    assert 'class="sel"' in html and 'class="mark live"' in html and "nearest: persona:pirate, farmer" in html
    assert "no space" in persona_map_svg_html([], [MapPoint("1", 0, 0)], empty="no space")
    # the running point survives a save and restore of the conversation, and a guard reset clears it
    assert LiveReply.from_dict(writing.to_dict()).point == (-0.5, 0.2)
    from playground.chat.session import StreamEvent

    writing.feed(StreamEvent("reset"))
    assert writing.point is None
