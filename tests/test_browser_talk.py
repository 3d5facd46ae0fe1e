"""Issue 18 in a real browser, as a speaker giving a talk and a curious user meet it: large type that works in the
light theme too, a header that keeps its words at phone width, Compare on one shared scale with an unsteered side
that says so, the demo steps a speaker clicks through (same reply every time), and probes that explain themselves
on hover. Screenshots go to the test's temp folder, or to docs/ with UPDATE_SCREENSHOTS=1."""

from __future__ import annotations

import pytest

from playground.definitions.demo_script import load_demo
from playground.definitions.personas import Catalog
from playground.steering.probe_notes import trait_texts

from .browser_support import shots

pytestmark = [pytest.mark.model, pytest.mark.browser]

SIZES_JS = """() => {
  const px = (s) => parseFloat(getComputedStyle(document.querySelector(s)).fontSize);
  return {send: px('#send'), stop: px('#stop'), msg: px('#msg textarea'), persona: px('#persona-select input')};
}"""


def _large_type(page, on: bool = True) -> None:
    if page.locator("#large-type input").is_checked() != on:
        page.click("#large-type input")
    page.wait_for_function(f"document.body.classList.contains('pp-large') === {str(on).lower()}")
    page.wait_for_timeout(300)


def test_large_type_enlarges_buttons_and_inputs_in_the_light_theme_as_in_the_dark(browser, url, out_dir):
    """Issue 18: with large type on, Send stayed 16 px and Stop 12 px in the light theme (dark mode worked)."""
    page = shots.open_page(browser, url)
    assert "dark" not in page.evaluate("document.body.className")
    normal = page.evaluate(SIZES_JS)
    _large_type(page)
    light = page.evaluate(SIZES_JS)
    print(f"\nlight theme, normal: {normal}; large: {light}")
    assert light["send"] >= 20 and light["stop"] >= 20, light
    assert light["msg"] >= 18 and light["persona"] >= 18, light
    assert all(light[k] >= 1.25 * normal[k] for k in normal), (normal, light)
    shots.top(page)
    page.screenshot(path=str(out_dir / "screenshot-talk-light.png"))
    page.click("#theme-toggle")
    page.wait_for_function("document.body.classList.contains('dark')")
    page.wait_for_timeout(300)
    assert page.evaluate(SIZES_JS) == light  # the same sizes in both themes
    page.close()


def test_the_header_keeps_its_words_at_phone_width(browser, url):
    """Issue 18: at phone width the title broke letter by letter ("Pers / ona / Play / grou / nd")."""
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1)
    page.goto(url + "?__theme=light")
    page.wait_for_selector("#msg textarea", timeout=60_000)
    page.wait_for_function("document.querySelector('#badge')?.innerText.includes('model')", timeout=60_000)
    box = page.evaluate(
        """() => {
      const h = document.querySelector('#title h2'), r = h.getBoundingClientRect(), cs = getComputedStyle(h);
      const line = parseFloat(cs.lineHeight) || parseFloat(cs.fontSize) * 1.25;
      return {lines: Math.round(r.height / line), overflow: h.scrollWidth - h.clientWidth,
              header: document.querySelector('#header').getBoundingClientRect().height,
              page: document.documentElement.scrollWidth};
    }"""
    )
    print(f"\nheader at 390 px: {box}")
    assert box["lines"] <= 2 and box["overflow"] <= 1, box  # whole words: at most "Persona / Playground"
    assert box["header"] <= 200, box  # it was 251 px, most of a phone's first screen
    assert box["page"] <= 390, box  # nothing wider than the phone
    page.close()


def _data(page, selector: str, name: str) -> float:
    return float(page.locator(selector).get_attribute(f"data-{name}"))


def test_compare_draws_both_sides_on_one_scale_and_an_unsteered_side_says_so(browser, url, out_dir):
    """Issue 18: the two sides used different colour scales (±4.0 vs ±8.3) and bar ranges, and showed strength 1
    when the trait was "(none)"."""
    page = shots.open_page(browser, url)
    page.click("button[role=tab]:has-text('Compare')")
    page.wait_for_selector("#cmp-msg textarea")
    assert not page.locator("#cmp-a-strength").is_visible()  # A starts with no trait: no strength to show
    assert page.locator("#cmp-a-none").inner_text() == "Strength: none (unsteered)"
    shots.pick(page, "cmp-a-trait", "optimistic")
    page.wait_for_selector("#cmp-a-strength input[type=number]", state="visible")
    assert page.locator("#cmp-a-strength input[type=number]").input_value() == "1"
    assert not page.locator("#cmp-a-none").is_visible()
    shots.pick(page, "cmp-a-trait", "(none)")
    page.wait_for_selector("#cmp-a-strength", state="hidden")
    assert page.locator("#cmp-a-none").is_visible()

    shots.pick(page, "cmp-b-trait", "evil")  # B strongly steered: its readouts run far beyond A's
    shots.set_slider(page, "cmp-b-strength", 2)
    shots.pick(page, "cmp-heat-trait", "evil")
    shots.set_slider(page, "cmp-max", 48)
    page.fill("#cmp-msg textarea", "Tell me about your plans for the weekend.")
    page.press("#cmp-msg textarea", "Enter")
    page.wait_for_function(
        "document.querySelector('#cmp-status')?.innerText.includes('Both answered')", timeout=180_000
    )
    page.wait_for_timeout(500)
    assert "unsteered" in page.locator("#cmp-a-title").inner_text()
    assert "steering evil +2" in page.locator("#cmp-b-title").inner_text()

    axes = [(_data(page, f"#cmp-{s}-bars .pp-axis", "lo"), _data(page, f"#cmp-{s}-bars .pp-axis", "hi")) for s in "ab"]
    vmax = [_data(page, f"#cmp-{s}-heat .pp-scale", "vmax") for s in "ab"]
    z = {
        s: [float(v) for v in page.locator(f"#cmp-{s}-heat span.t").evaluate_all("e => e.map(x => x.dataset.z)")]
        for s in "ab"
    }
    print(
        f"\ncompare: bar axes {axes}, colour scales {vmax}; max |z| A {max(map(abs, z['a'])):.2f}, "
        f"B {max(map(abs, z['b'])):.2f}"
    )
    assert axes[0] == axes[1] and vmax[0] == vmax[1], (axes, vmax)
    own = {s: max(4.0, *map(abs, z[s])) for s in "ab"}  # the colour scale each side used to fit to itself
    assert own["a"] != own["b"], own  # so this run would have shown two scales before
    assert abs(vmax[0] - max(own.values())) < 0.01, (vmax, own)  # the larger of the two replies sets the one scale
    assert "One scale for both sides" in page.locator("#cmp-scale").inner_text()
    # both answers on the persona map, each with its nearest characters
    assert page.locator("#cmp-map circle.mark").count() == 2
    caption = page.locator("#cmp-map .pp-map-caption").inner_text()
    assert "A: " in caption and "B: " in caption, caption
    page.locator("#cmp-scale").scroll_into_view_if_needed()
    page.evaluate("document.querySelector('#cmp-scale').scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    page.screenshot(path=str(out_dir / "screenshot-compare-scale.png"))
    page.close()


def _last_reply(page) -> str:
    return page.locator("#chat .bot-row").last.inner_text().strip()


def test_demo_steps_set_persona_steering_seed_and_message_and_give_the_same_reply(browser, url):
    script = load_demo()
    catalog = Catalog()
    page = shots.open_page(browser, url)
    shots.open_accordion(page, "demo")
    shots.open_accordion(page, "sampling")
    for i in range(3):  # "Next step" walks the script from step 1
        step = script.steps[i]
        page.click("#demo-next")
        page.wait_for_function(
            f"document.querySelector('#msg textarea').value === {step.message!r}"
            f" && document.querySelector('#demo-note').innerText.includes('Step {i + 1} of')",
            timeout=30_000,
        )
        page.wait_for_timeout(400)
        name = catalog.persona(step.persona).name
        assert name in page.locator("#persona-select input").input_value()
        assert name in page.locator("#persona-info").inner_text()
        assert page.locator("#seed input").input_value() == str(step.seed)
        assert float(page.locator("#temperature input[type=number]").input_value()) == step.temperature
        for trait, value in step.steering.items():
            assert float(page.locator(f"#steer-{trait} input[type=number]").input_value()) == value
        if not step.steering:
            assert float(page.locator("#steer-humorous input[type=number]").input_value()) == 0.0
        box = page.locator("#msg textarea").bounding_box()  # the prepared message is in view, ready for Enter
        assert box is not None and box["y"] + box["height"] <= shots.VIEWPORT["height"], box
    assert "humorous" in script.steps[2].steering  # the walk above did check a steered step

    # step 1 twice, each from a fresh conversation: the same reply
    replies = []
    for _ in range(2):
        shots.pick(page, "demo-step", script.choices()[0][0])
        page.wait_for_function(
            f"document.querySelector('#msg textarea').value === {script.steps[0].message!r}", timeout=30_000
        )
        page.wait_for_function("document.querySelectorAll('#chat .user-row').length === 0", timeout=30_000)
        shots.send_message(page, script.steps[0].message)
        replies.append(_last_reply(page))
    print(f"\ndemo step 1 reply: {replies[0][:120]!r}")
    assert replies[0] and replies[0] == replies[1]
    page.close()


def test_each_probe_explains_itself_on_hover(browser, url):
    """Issue 18, item 8: a trait's definition, what the number is and how good the probe is, one hover away."""
    page = shots.open_page(browser, url)
    shots.open_accordion(page, "sampling")
    shots.set_slider(page, "max-tokens", 24)
    shots.send_message(page, "Say something about rainy Tuesdays.")
    texts = trait_texts(Catalog())
    row = page.locator('#probe-bars .pp-row[data-trait="humorous"]')
    row.hover()
    title = row.get_attribute("title")
    assert title.startswith("humorous: mean "), title
    assert texts["humorous"].description in title
    assert texts["humorous"].high in title and texts["humorous"].low in title
    assert "calibrated z: 0 = a typical assistant reply" in title
    assert "held-out AUROC 0." in title
    legend = page.locator("#probe-heatmap .pp-about").get_attribute("title")
    heat_trait = page.locator("#probe-heatmap .pp-about").inner_text()
    assert legend.startswith(f"{heat_trait}: ") and "AUROC" in legend
    page.close()
