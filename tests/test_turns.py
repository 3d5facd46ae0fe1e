"""Issue 18, item 5: what chat users reach for, in the library (``ChatState`` and below). A reply cut at the token
limit says so (``finish_reason``) and can be continued; regenerating keeps the earlier replies as alternatives
("swipes") and the one shown is the model's history; a message can be edited (later turns dropped); a message
sent while a reply is written is kept and sent after it; the context meter counts what the model reads. Real
model, greedy or fixed seeds."""

from __future__ import annotations

import json

import pytest

from playground.errors import PlaygroundError
from playground.prompt.conversation import ContextUse, Turn, context_use
from playground.ui.chat_state import ChatState
from playground.ui.transcript import parse_transcript
from playground.ui.views import context_meter

from .test_conversation import WordBackend

pytestmark = pytest.mark.model

QUESTION = "Tell me about the moon in three sentences."


def test_a_reply_at_the_token_limit_says_so_and_continues_where_it_stopped(playground):
    st = ChatState(playground, "assistant")
    cut = st.send(QUESTION, temperature=0, max_tokens=8)
    assert cut.finish_reason == "length" and cut.cut and len(cut.tokens) == 8
    first_text, first_tokens, prompt_last = cut.text, list(cut.tokens), cut.prompt_last()

    updates = list(st.continue_reply(temperature=0, max_tokens=40))
    live = st.last.reply
    assert updates[-1] is live and live.done and len(st.turns) == 1  # the same reply, not a new turn
    assert live.text.startswith(first_text) and len(live.text) > len(first_text)
    assert live.tokens[:8] == first_tokens and len(live.tokens) > 8
    assert len(live.readouts) == len(live.tokens) and live.prompt_last() == prompt_last
    assert live.result["tokens"] == live.tokens and live.result["prefix"] == first_text
    assert live.finish_reason in ("end", "length") and not live.stopped
    assert st.session.history == [Turn(QUESTION, live.text)]  # the model sees the whole reply

    # a reply that ends by itself is not cut
    whole = ChatState(playground, "assistant").send("Say hi.", temperature=0, max_tokens=200)
    assert whole.finish_reason == "end" and not whole.cut


def test_regenerating_keeps_the_earlier_replies_and_the_shown_one_is_the_history(playground):
    st = ChatState(playground, "assistant")
    texts = [st.send("Give me a name for a cat.", temperature=1.2, seed=1, max_tokens=16).text]
    for seed in (2, 3):
        texts.append(list(st.regenerate(temperature=1.2, seed=seed, max_tokens=16))[-1].text)
    record = st.last
    assert len(st.turns) == 1 and record.count == 3 and record.shown == 2
    assert len(set(texts)) > 1, texts
    assert [s.reply.text for s in record.swipes] == texts
    assert st.session.history == [Turn(record.user, texts[2])]

    assert st.swipe(-1).text == texts[1] and st.swipe(-1).text == texts[0] and st.swipe(-1).text == texts[0]
    assert st.session.history[-1].assistant == texts[0]
    with pytest.raises(PlaygroundError, match="no reply 4"):
        st.select(3)
    st.send("Why that name?", temperature=0, max_tokens=8)
    assert [t.assistant for t in st.session.history][:1] == [texts[0]]  # the next turn was written after it
    assert st.turns[0].count == 3 and st.trend()  # the earlier turn keeps its alternatives

    # a regenerate that can't start (bad steering) changes nothing
    with pytest.raises(PlaygroundError):
        st.regenerate({"no-such-trait": 1.0})
    assert st.last.count == 1 and len(st.session.history) == 2


def test_editing_a_message_drops_it_and_everything_after_it(playground):
    st = ChatState(playground, "assistant")
    st.send("Hello!", temperature=0, max_tokens=6)
    st.send("What is two plus two?", temperature=0, max_tokens=6)
    st.send("And three plus three?", temperature=0, max_tokens=6)
    list(st.stream("What is five plus five?", edit=1, temperature=0, max_tokens=6))
    assert [t.user for t in st.turns] == ["Hello!", "What is five plus five?"]
    assert [t.user for t in st.session.history] == ["Hello!", "What is five plus five?"]
    with pytest.raises(PlaygroundError, match="no message 9"):
        st.stream("Nope", edit=8)
    with pytest.raises(PlaygroundError):  # a failed start leaves the conversation as it was
        st.stream("Edited", {"no-such-trait": 1.0}, edit=0)
    assert [t.user for t in st.turns] == ["Hello!", "What is five plus five?"]


def test_a_message_sent_while_a_reply_is_written_is_kept_and_sent_after_it(playground):
    st = ChatState(playground, "assistant")
    assert not st.queue("Nothing is being written: send me now.")
    updates = st.stream(QUESTION, temperature=0, max_tokens=48)
    next(updates)
    assert st.queue(QUESTION) and st.pending == []  # Enter pressed twice: the message is being answered
    assert st.queue("And the sun?") and st.queue("And Mars?")
    assert st.stream_next() is None  # a reply is being written: its writer sends the next one
    with pytest.raises(PlaygroundError, match="empty"):
        st.queue("   ")
    for _ in updates:
        pass
    assert not st.busy
    assert st.queue("A third one waits behind the others.")  # no reply is written, but two wait before it
    sent = []
    while (nxt := st.stream_next(temperature=0, max_tokens=8)) is not None:
        sent.append(list(nxt)[-1].text)
    assert [t.user for t in st.turns] == [QUESTION, "And the sun?", "And Mars?", "A third one waits behind the others."]
    assert len(sent) == 3 and all(t.reply.done for t in st.turns) and st.pending == []

    # Stop takes the kept messages back (for the message box)
    updates = st.stream(QUESTION, temperature=0, max_tokens=200)
    next(updates)
    st.queue("Kept for the box")
    assert st.take_pending() == ["Kept for the box"] and st.request_stop()
    for _ in updates:
        pass
    assert st.stream_next() is None


def test_the_context_meter_grows_with_the_conversation_and_says_when_turns_are_left_out(playground):
    st = ChatState(playground, "assistant")
    empty = st.context_use()
    assert 0 < empty.used < empty.n_ctx == playground.backend.n_ctx and empty.dropped_turns == 0
    st.send(QUESTION, temperature=0, max_tokens=24)
    after = st.context_use()
    assert after.used > empty.used + 24 and after.dropped_turns == 0

    backend = WordBackend(400)  # one token per word: exact arithmetic
    history = [Turn(f"question number {i} " * 5, f"answer {i} " * 5) for i in range(40)]
    use = context_use(backend, st.persona, st.persona.system_prompt, history, reserve=100)
    assert 0 < use.dropped_turns < 40 and use.used <= 300 and use.share <= 0.75


def test_alternatives_and_continued_replies_export_and_import(playground):
    st = ChatState(playground, "assistant")
    st.send(QUESTION, temperature=0, max_tokens=8)
    list(st.continue_reply(temperature=0, max_tokens=8))
    list(st.regenerate(temperature=1.0, seed=5, max_tokens=8))
    st.select(0)
    data = json.loads(st.export_json())
    turn = data["turns"][0]
    assert turn["assistant"] == st.last.reply.text and turn["shown"] == 0 and len(turn["swipes"]) == 2
    copy = ChatState.from_transcript(playground, parse_transcript(st.export_json()))
    assert copy.last.count == 2 and copy.last.shown == 0
    assert [s.reply.text for s in copy.last.swipes] == [s.reply.text for s in st.last.swipes]
    assert copy.last.reply.tokens == st.last.reply.tokens and copy.session.history == st.session.history

    # an export without alternatives (version 1 as written before) still reads
    old = {"format": data["format"], "version": 1, "persona": "assistant"}
    old["turns"] = [{"user": "Hi", "assistant": "Hello"}]
    plain = ChatState.from_transcript(playground, parse_transcript(json.dumps(old)))
    assert plain.last.count == 1 and plain.session.history == [Turn("Hi", "Hello")]
    bad = {**old, "turns": [{"user": "Hi", "assistant": "Hello", "swipes": [{"assistant": "Hello"}], "shown": 3}]}
    with pytest.raises(PlaygroundError, match="'shown'"):
        parse_transcript(json.dumps(bad))


def test_a_stopped_continuation_keeps_what_was_written(playground):
    st = ChatState(playground, "assistant")
    first = st.send("Tell me a long story about the sea.", temperature=0, max_tokens=8).text
    updates = st.continue_reply(temperature=0, max_tokens=300)
    live = next(updates)
    st.request_stop()
    for live in updates:  # noqa: B007 - the last update is the reply
        pass
    assert live.stopped and live.text.startswith(first)
    assert st.session.history[-1].assistant == live.text


class _Full:
    """Stands in for a ChatState whose conversation fills ``used`` tokens of the window."""

    def __init__(self, used: int, dropped: int = 0):
        self.use = ContextUse(used, 4096, dropped)

    def context_use(self, reserve=None) -> ContextUse:
        return self.use


def test_the_meter_warns_near_the_limit_and_says_when_turns_are_left_out():
    ok, warn, full = (context_meter(_Full(n), 160) for n in (400, 3300, 4000))
    assert "pp-meter-ok" in ok and ">400</b> / 4,096 tokens (10%)" in ok and "left out" not in ok
    assert "pp-meter-warn" in warn and "#d97706" in warn
    assert "pp-meter-full" in full and "#dc2626" in full
    assert "3 oldest turn(s) left out" in context_meter(_Full(3900, 3), 160)
