"""Issue 18, talk mode and probes that explain themselves, without a browser: the demo script a speaker clicks
through, one shared scale for the Compare tab, the probes' hover texts, large type's CSS in both themes.
(The same things in a real browser: tests/test_browser_talk.py.)"""

from __future__ import annotations

import re

import gradio as gr
import pytest

from playground.definitions.demo_script import DemoScript, DemoStep, load_demo
from playground.definitions.personas import Catalog
from playground.definitions.schema import STEER_LIMIT
from playground.errors import ValidationError
from playground.evals.heldout import heldout_files, load_heldout
from playground.evals.overlap import ngram_overlaps
from playground.paths import SHIPPED_PERSONAS
from playground.steering.probe_notes import explain, probe_notes, quality_note, trait_texts
from playground.steering.store import VectorStore
from playground.ui import plots
from playground.ui.app import CSS, LARGE_TYPE_CSS
from playground.ui.compare_tab import UNSTEERED, strength_controls
from playground.ui.probe_scale import BAR_FLOOR, BAR_LIMITS, HEAT_FLOOR, bar_range, bar_values, shared_scale

from .test_heldout_overlap import training_texts

SHIPPED_TRAITS = VectorStore("smollm2-135m").names()


# -- the demo script -------------------------------------------------------------------------------------------
def test_the_shipped_demo_script_loads_with_fixed_seeds_and_known_personas_and_traits():
    script = load_demo(personas=list(Catalog().persona_files()), traits=SHIPPED_TRAITS)
    assert 4 <= len(script.steps) <= 8
    assert all(isinstance(s.seed, int) and s.seed >= 0 for s in script.steps)
    assert any(not s.steering for s in script.steps) and any(s.steering for s in script.steps)
    assert len({s.persona for s in script.steps}) >= 3
    assert all(s.message and s.say for s in script.steps)


def test_demo_messages_are_fresh_no_word_6gram_with_training_or_evaluation_texts():
    """The demo is shown, not measured: its messages must not copy the trait data (training side) nor the held-out
    evaluation sets, so neither a talk nor a rehearsal touches what the probes are scored on."""
    demo = {"personas/demo/talk.yml": [s.message for s in load_demo().steps]}
    held = {str(p.relative_to(SHIPPED_PERSONAS)): load_heldout(p).texts() for p in heldout_files()}
    assert ngram_overlaps({**training_texts(), **held}, demo, 6) == []


def test_a_step_becomes_slider_values_in_trait_order():
    step = DemoStep("t", "assistant", "hi", {"humorous": 1.0}, seed=3, temperature=0.5, max_tokens=64)
    assert step.controls(["evil", "humorous"]) == [0.0, 1.0, 0.5, 64.0]
    assert "humorous +1" in step.describe() and "seed 3" in step.describe()
    assert "unsteered" in DemoStep("t", "assistant", "hi").describe()


def test_next_step_wraps_and_a_missing_step_is_the_first():
    steps = tuple(DemoStep(f"s{i}", "assistant", "hi") for i in range(3))
    script = DemoScript("x", steps)
    assert [script.next_index(i) for i in (None, 0, 1, 2)] == [0, 1, 2, 0]
    assert script.step(None) is steps[0] and script.step(9) is steps[2]
    assert script.choices()[1] == ("2. s1", 1)


def test_a_broken_demo_script_reports_every_problem_with_its_line(tmp_path):
    path = tmp_path / "talk.yml"
    path.write_text(
        "steps:\n"
        "  - title: ok\n    persona: assistant\n    message: hello\n    seed: 1\n"
        "  - title: bad\n    persona: asistant\n    message: hi\n    steering: {humourous: 3}\n    seed: -4\n"
        "  - title: ''\n    persona: pirate\n    message: hi\n    temperature: 9\n",
        encoding="utf-8",
    )
    with pytest.raises(ValidationError) as err:
        load_demo(path, personas=["assistant", "pirate"], traits=SHIPPED_TRAITS)
    text = str(err.value)
    assert "unknown persona 'asistant'; did you mean 'assistant'?" in text
    assert "unknown trait 'humourous'; did you mean 'humorous'?" in text
    assert f"must be a number in ±{STEER_LIMIT:g}" in text and "'seed' must be a whole number" in text
    assert "'title' must be a non-empty text" in text and "'temperature' must be a number in 0..1.5" in text
    lines = {i.line for i in err.value.issues}
    assert {7, 9, 10, 11, 14} <= lines, lines


def test_a_demo_script_without_steps_is_refused(tmp_path):
    path = tmp_path / "talk.yml"
    path.write_text("name: empty\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="non-empty list of steps"):
        load_demo(path)


# -- one scale for the Compare tab --------------------------------------------------------------------------------
def test_bar_range_keeps_its_floor_and_limits():
    assert bar_range([]) == BAR_FLOOR and bar_range([0.5, 1.0]) == BAR_FLOOR
    assert bar_range([-30.0, 40.0]) == BAR_LIMITS
    assert bar_range([7.8]) == (BAR_FLOOR[0], 8.3)


def test_shared_scale_is_the_widest_of_both_replies():
    a = (bar_values({"evil": 1.0}, {"evil": 0.5}), [1.0, -3.0])
    b = (bar_values({"evil": 7.8}, {}, {"evil": {"warn": 2.0, "act": 9.0}}), [8.3, 0.1])
    scale = shared_scale([a, b])
    assert (scale.lo, scale.hi, scale.vmax) == (BAR_FLOOR[0], 9.5, 8.3)
    assert shared_scale([a]).vmax == HEAT_FLOOR
    assert "±8.3 z" in scale.describe()


def test_panels_drawn_with_one_scale_say_so_in_the_page():
    scale = shared_scale([([1.0], [2.0]), ([7.8], [-8.3])])
    small = plots.probe_bars_html({"evil": 1.0}, span=scale.span)
    big = plots.probe_bars_html({"evil": 7.8}, span=scale.span)
    axis = re.compile(r'class="pp-axis" data-lo="([-\d.]+)" data-hi="([-\d.]+)"')
    assert axis.search(small).groups() == axis.search(big).groups() == ("-2.00", "8.30")
    heat_a = plots.token_heatmap_html(["a"], [2.0], "evil", vmax=scale.vmax)
    heat_b = plots.token_heatmap_html(["b"], [-8.3], "evil", vmax=scale.vmax)
    vmax = re.compile(r'data-vmax="([\d.]+)"')
    assert vmax.search(heat_a).group(1) == vmax.search(heat_b).group(1) == "8.30"
    # without a shared scale each fits itself, as before
    assert axis.search(plots.probe_bars_html({"evil": 1.0})).groups() == ("-2.00", "4.00")


def test_no_steer_trait_hides_the_strength_and_says_unsteered():
    slider, note = strength_controls("(none)", 1.0)
    assert slider["visible"] is False and note["visible"] is True and "none" in UNSTEERED
    slider, note = strength_controls("humorous", 0.0)
    assert slider["visible"] is True and slider["value"] == 1.0 and note["visible"] is False
    assert strength_controls("humorous", -0.5)[0]["value"] == -0.5


# -- probes that explain themselves -------------------------------------------------------------------------------
def test_every_shipped_trait_has_a_definition_and_two_examples():
    texts = trait_texts(Catalog())
    assert set(SHIPPED_TRAITS) <= set(texts)
    for name in SHIPPED_TRAITS:
        assert texts[name].description and texts[name].high and texts[name].low, name
    assert texts["humorous"].description.startswith("The reply is playful and funny")


def test_a_probe_hover_says_what_it_means_what_the_number_is_and_how_good_it_is():
    rel = {"humorous": {"auroc": 0.8756, "specificity": 0.7057, "source": "heldout", "reliable": True}}
    note = probe_notes(Catalog(), rel)["humorous"]
    assert "humorous: The reply is playful and funny" in note
    assert "Reads high, e.g. “" in note and "Reads low, e.g. “" in note
    assert "calibrated z: 0 = a typical assistant reply" in note
    assert "held-out AUROC 0.88, specificity 0.71 (reliable" in note
    weak = quality_note({"auroc": 0.53, "specificity": 0.6, "source": "cv", "reliable": False})
    assert "cross-instruction AUROC 0.53" in weak and "unreliable" in weak
    assert "not measured" in quality_note(None)
    assert explain("mystery", None, None).startswith("mystery: no trait file describes it.")


def test_the_hover_text_reaches_the_bar_and_the_heatmap_legend():
    about = {"evil": 'evil: "harm" & <worse>\nline two'}
    bars = plots.probe_bars_html({"evil": 1.0}, about=about)
    title = re.search(r'class="pp-row" title="([^"]*)" data-trait="evil"', bars).group(1)
    assert title.startswith("evil: mean +1.00 z") and "&quot;harm&quot; &amp; &lt;worse&gt;\nline two" in title
    heat = plots.token_heatmap_html(["a"], [1.0], "evil", about=about["evil"])
    assert 'class="pp-about" title="evil: &quot;harm&quot;' in heat


def test_the_shipped_probes_report_their_measured_auroc():
    from playground.steering.probes import ProbeSet

    reliability = ProbeSet(VectorStore("smollm2-135m").all()).reliability()
    notes = probe_notes(Catalog(), reliability)
    assert set(notes) == set(reliability)
    for trait, rel in reliability.items():
        if rel["auroc"] is not None:
            assert f"AUROC {rel['auroc']:.2f}" in notes[trait], trait


# -- large type in both themes ------------------------------------------------------------------------------------
def test_large_type_redefines_every_size_the_theme_derives_from_the_type_scale():
    """Gradio resolves its derived sizes (--button-large-text-size: var(--text-lg), ...) on :root; the light theme
    has no other definition, so large type must redefine each of them on the body itself (issue 18: Send stayed
    16 px and Stop 12 px in the light theme)."""
    theme = gr.themes.Soft(primary_hue="indigo", secondary_hue="amber")
    root = re.search(r":root\s*\{(.*?)\}", theme._get_theme_css(), re.S).group(1)
    derived = set(re.findall(r"(--[\w-]+):\s*var\(--text-\w+\)", root))
    assert {"--button-large-text-size", "--button-small-text-size", "--input-text-size"} <= derived
    declared = set(re.findall(r"(--[\w-]+):", LARGE_TYPE_CSS))
    assert derived <= declared, derived - declared
    assert "var(--text-md)" in re.search(r"--button-small-text-size:([^;}]*)", LARGE_TYPE_CSS).group(1)
    assert LARGE_TYPE_CSS in CSS
