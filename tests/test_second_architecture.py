"""A second architecture (issue 19, first slice): Gemma-3 270M, a base model with sliding-window attention and no
chat template, assembled into .venv/share/models by `make test`. It chats on the llama.cpp backend, and
everything it lacks (its own template, trait vectors, the prompt screen, the fast generation path) is said in
``notices`` and in the UI instead of disappearing."""

from __future__ import annotations

import shutil

import pytest

from playground.chat.session import Playground
from playground.errors import PlaygroundError
from playground.prompt.chat_template import Message

from .browser_support import shots
from .conftest import REPO, running_ui

GEMMA = REPO / ".venv" / "share" / "models" / "gemma-3-270m-q4_k_m.gguf"

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def gemma():
    from playground.backends import load_backend

    if not GEMMA.is_file():
        pytest.fail(f"{GEMMA} is missing: `make test` assembles it from the package registry")
    backend = load_backend(str(GEMMA))
    yield backend
    backend.close()


def test_gemma_chats_on_llama_cpp_and_says_what_it_lacks(gemma):
    pg = Playground(loaded_backend=gemma)
    assert gemma.model_id == "gemma-3-270m-q4_k_m" and gemma.n_layers == 18
    result = pg.chat("pirate", "Tell me about the sea.", max_tokens=32, temperature=0)
    assert result.tokens and result.reply.strip()
    assert result.probes == {} and result.finish_reason in {"end", "length", "stop_string"}
    text = "\n".join(result.notices)
    assert "no chat template" in text and "plain transcript" in text
    assert "no trait vectors for gemma-3-270m-q4_k_m" in text and f"prepare --model {GEMMA}" in text
    assert "no prompt screen" in text and "train-screen" in text
    assert "reference path" in text  # its cache layout cannot be handed to the flash-attention context
    again = pg.chat("pirate", "Tell me about the sea.", max_tokens=32, temperature=0)
    assert again.reply == result.reply  # greedy is repeatable on the fallback path


def test_a_hand_over_that_cannot_work_is_remembered_not_tried_at_every_load(gemma, monkeypatch):
    from playground.backends.decode_check import CheckCache
    from playground.backends.llama_cpp import LlamaCppBackend

    CheckCache._failures.clear()  # from disk, as in a new process
    monkeypatch.setattr(LlamaCppBackend, "check_decoding_paths", lambda *a, **k: pytest.fail("checked again"))
    backend = LlamaCppBackend(gemma.source)
    try:
        assert not backend._hand_over and "reference path" in "\n".join(backend.notices)
    finally:
        backend.close()


def test_a_base_model_gets_a_plain_transcript_it_can_continue(gemma):
    text = gemma.template.render(
        [Message("system", "You are a pirate."), Message("user", "Hi"), Message("assistant", "Arr."),
         Message("user", "Where to?")]
    )  # fmt: skip
    assert gemma.template.is_fallback
    assert text == "<bos>You are a pirate.\n\nUser: Hi\nAssistant: Arr.\n\nUser: Where to?\nAssistant:"


def test_steering_an_unprepared_model_says_how_to_prepare_it(gemma):
    pg = Playground(loaded_backend=gemma)
    with pytest.raises(PlaygroundError, match=r"available: none.*prepare --model MODEL --traits humorous"):
        pg.chat("pirate", "Hi", steering={"humorous": 1.0}, max_tokens=4)


def test_the_default_model_has_no_readiness_notices(playground):
    from playground.chat.readiness import model_notices

    assert model_notices(playground) == []


@pytest.mark.browser
def test_the_ui_on_an_unprepared_model_shows_a_banner_and_still_chats(gemma, browser, out_dir):
    with running_ui(Playground(loaded_backend=gemma)) as address:
        page = shots.open_page(browser, address)
        banner = page.locator("#model-notices").inner_text()
        assert "not fully prepared" in banner and "playground prepare --model" in banner, banner
        shots.send_message(page, "Hello there!")
        assert "✓" in page.locator("#status-box").inner_text()
        assert "no trait probes yet" in page.locator("#probe-bars").inner_text()
        assert "no trait probes" in page.locator("#probe-heatmap").inner_text()
        assert "no trait probes" in page.locator("#probe-trend").inner_text()
        shots.top(page)
        page.screenshot(path=str(out_dir / "screenshot-unprepared.png"))
        page.close()


MONDAY = (
    "Mondays? The alarm rings, the coffee machine sulks, and my cat stares at me as if I had invented the week. "
    "Then a colleague tells a terrible pun at the printer and the whole office groans together. So I would say "
    "Mondays are tolerable, as long as someone brings biscuits."
)


@pytest.fixture(scope="module")
def gemma_hf():
    """Gemma on the transformers backend: de-quantised once into the (test session's) user cache (~30 s)."""
    from playground.backends import load_backend
    from playground.backends.gguf_folder import FOLDER_MARK, converted_folder

    backend = load_backend(str(GEMMA), backend="transformers")
    folder = converted_folder(GEMMA)
    assert (folder / FOLDER_MARK).is_file()
    yield backend
    shutil.rmtree(folder)  # 1.1 GB of float32 weights: not left behind in pytest's kept temporary folders


def test_gemma_chats_on_transformers_like_on_llama_cpp(gemma, gemma_hf):
    assert (gemma_hf.n_layers, gemma_hf.d_model) == (gemma.n_layers, gemma.d_model)
    assert gemma_hf.template.is_fallback
    a = Playground(loaded_backend=gemma).chat("pirate", "Tell me about the sea.", max_tokens=24, temperature=0)
    b = Playground(loaded_backend=gemma_hf).chat("pirate", "Tell me about the sea.", max_tokens=24, temperature=0)
    print(f"\nllama.cpp: {a.reply!r}\ntransformers: {b.reply!r}")
    assert b.reply.strip() and b.finish_reason in {"end", "length", "stop_string"}
    assert "plain transcript" in "\n".join(b.notices)
    # the same greedy opening on Q4_K_M weights and their float de-quantisation
    assert a.tokens[:3] == b.tokens[:3]


@pytest.fixture(scope="module")
def prepared_humorous(gemma, tmp_path_factory):
    """`prepare --traits humorous --no-screen` on Gemma, into a cache of this module's own (~2 min on 2 cores)."""
    import os

    from playground.evals.prepare import card_folder, prepare_model

    before = os.environ["PLAYGROUND_CACHE"]
    os.environ["PLAYGROUND_CACHE"] = str(tmp_path_factory.mktemp("gemma-cache"))
    try:
        card = prepare_model(gemma, ["humorous"], screen=False)
        yield card, card_folder(gemma.model_id)
    finally:
        os.environ["PLAYGROUND_CACHE"] = before


def test_prepare_makes_a_probe_that_separates_held_out_replies_and_a_card(prepared_humorous):
    card, folder = prepared_humorous
    row = card["traits"]["humorous"]
    print(f"\nGemma humorous: {row}, {card['seconds']}")
    assert row["extraction_heldout_auroc"] >= 0.75  # measured 0.89 on this machine
    assert row["strength1_degenerate_share"] <= 0.05  # the validated dose keeps replies coherent
    assert 0 < row["probe_layer"] < 18 and 0 < row["steer_layer"] < 18
    assert set(card["seconds"]) == {"extract humorous", "calibrate"}
    assert "| humorous |" in (folder / "MODEL_CARD.md").read_text()


def test_a_prepared_trait_reads_and_steers_and_the_rest_is_still_named(gemma, prepared_humorous):
    pg = Playground(loaded_backend=gemma)
    plain = pg.chat("assistant", "What do you think about Mondays?", max_tokens=40, temperature=0)
    steered = pg.chat(
        "assistant", "What do you think about Mondays?", max_tokens=40, temperature=0, steering={"humorous": 1.0}
    )
    assert set(plain.probes) == {"humorous"}
    assert steered.reply != plain.reply  # steering changes the text
    # measured -0.31 -> +0.09 (strength 1 is validated at x0.25 of the first guess on this base model)
    assert steered.probes["humorous"]["mean"] > plain.probes["humorous"]["mean"] + 0.2
    text = "\n".join(plain.notices)
    missing = sorted(p.stem for p in (REPO / "personas" / "traits").glob("*.yaml") if p.stem != "humorous")
    assert f"no vectors for {', '.join(missing)} on" in text and "no prompt screen" in text
    assert "no trait vectors for" not in text


def test_prepare_resumes_instead_of_starting_over(gemma, prepared_humorous):
    from playground.evals.prepare import prepare_model

    messages: list[str] = []
    again = prepare_model(gemma, ["humorous"], screen=False, log=messages.append)
    assert messages == ["extract humorous: done before, kept", "calibrate: done before, kept"]
    assert again["traits"] == prepared_humorous[0]["traits"]


def test_gemma_readouts_agree_between_backends_and_steering_works_on_both(gemma, gemma_hf, prepared_humorous):
    import numpy as np

    from playground.steering.probes import ProbeSet
    from playground.steering.store import VectorStore

    probes = ProbeSet(VectorStore(gemma.model_id).all())
    text = gemma.template.render([Message("user", "What do you think about Mondays?"), Message("assistant", MONDAY)])
    tokens = gemma.tokenize(text)
    start = len(gemma.tokenize(gemma.template.render([Message("user", "What do you think about Mondays?")])))
    assert len(tokens) - start >= 20  # the reply's tokens (not the prompt's, whose first rows dwarf the rest)

    def reply_rows(backend):
        return {l: rows[start:] for l, rows in backend.hidden_states(tokens, probes.layers).items()}

    za = probes.score_rows(reply_rows(gemma))["humorous"]
    zb = probes.score_rows(reply_rows(gemma_hf))["humorous"]
    r = float(np.corrcoef(za, zb)[0, 1])
    print(f"\nGemma humorous readouts, llama.cpp vs transformers over {len(tokens)} tokens: r = {r:.4f}")
    assert r >= 0.95
    hf = Playground(loaded_backend=gemma_hf)
    plain = hf.chat("assistant", "What do you think about Mondays?", max_tokens=24, temperature=0)
    steered = hf.chat(
        "assistant", "What do you think about Mondays?", max_tokens=24, temperature=0, steering={"humorous": 1.0}
    )
    assert steered.reply != plain.reply
    assert steered.probes["humorous"]["mean"] > plain.probes["humorous"]["mean"]
