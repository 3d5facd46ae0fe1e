"""Chat first (issue 18): background jobs give way to chats and can be cancelled; the torch pause points; the
status events a reply sends before its first token; a background reply restarted when a chat comes in."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from torch import nn

from playground.backends.compute_thread import run_on_compute_thread
from playground.backends.priority import BackgroundJob, Foreground, JobCancelled
from playground.backends.torch_yield import yielding_layers
from playground.ui.lab import LabJobs

pytestmark = pytest.mark.usefixtures("torch_on_one_thread")


def _hold(foreground: Foreground, seconds: float) -> threading.Thread:
    """A 'chat' in the foreground for ``seconds``, from another thread."""

    def chat() -> None:
        with foreground.active():
            time.sleep(seconds)

    thread = threading.Thread(target=chat)
    thread.start()
    time.sleep(0.05)
    return thread


def test_a_job_waits_while_a_chat_is_active_and_stops_when_cancelled():
    fg = Foreground()
    job = BackgroundJob(fg, "test run")
    job.checkpoint()  # nothing in the foreground: no wait
    assert job.yields == 0 and not fg.busy
    chat = _hold(fg, 0.4)
    assert fg.busy
    job.checkpoint()
    chat.join()
    assert job.yields == 1 and job.yielded_s >= 0.25 and not fg.busy
    job.cancel()
    with pytest.raises(JobCancelled, match="test run cancelled"):
        job.checkpoint()


def test_cancel_ends_the_wait_for_a_chat():
    fg = Foreground()
    job = BackgroundJob(fg)
    chat = _hold(fg, 3.0)
    threading.Timer(0.2, job.cancel).start()
    started = time.monotonic()
    with pytest.raises(JobCancelled):
        job.checkpoint()
    assert time.monotonic() - started < 1.5  # did not wait for the chat to end
    chat.join()


def test_a_job_paused_on_the_compute_thread_runs_the_chats_model_work_meanwhile():
    """The job holds the compute thread; the chat's computations are served from inside its pause."""
    fg = Foreground()
    job = BackgroundJob(fg)
    inside = threading.Event()
    order: list[str] = []

    def long_torch_job() -> str:
        inside.set()
        job.checkpoint()  # the chat is active: serve its jobs until it ends
        order.append("background resumed")
        return "background done"

    def chat() -> None:
        with fg.active():
            inside.wait()
            for i in range(3):
                order.append(f"chat step {run_on_compute_thread(lambda i=i: i)}")

    chat_thread = threading.Thread(target=chat)
    chat_thread.start()
    time.sleep(0.05)
    assert run_on_compute_thread(long_torch_job) == "background done"
    chat_thread.join()
    assert order == ["chat step 0", "chat step 1", "chat step 2", "background resumed"]


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.lin(x))


class _Tiny(nn.Module):
    def __init__(self, n: int = 3) -> None:
        super().__init__()
        self.model = nn.Module()
        self.model.layers = nn.ModuleList(_Block() for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.model.layers:
            x = block(x)
        return x


def test_torch_blocks_check_in_forward_and_backward_and_the_hooks_go_away():
    model, fg = _Tiny(), Foreground()
    job = BackgroundJob(fg)
    calls = []
    job.checkpoint = lambda: calls.append(1)  # type: ignore[method-assign]  # count the pause points
    with yielding_layers(model, job, n_layers=3):
        model(torch.randn(2, 4)).sum().backward()
    assert len(calls) == 6  # 3 blocks forward + 3 gradients of their outputs
    calls.clear()
    model(torch.randn(2, 4)).sum().backward()
    assert calls == []
    assert all(not b._forward_hooks and not b._forward_pre_hooks for b in model.model.layers)


def test_a_cancelled_job_stops_inside_a_forward_and_inside_a_backward_pass():
    model, fg = _Tiny(), Foreground()
    job = BackgroundJob(fg)
    with yielding_layers(model, job, n_layers=3):
        loss = model(torch.randn(2, 4)).sum()
        job.cancel()
        with pytest.raises(JobCancelled):
            loss.backward()
        with pytest.raises(JobCancelled):
            model(torch.randn(2, 4))


def test_lab_jobs_cancel_only_the_pages_own_run():
    jobs, seen = LabJobs(Foreground()), []
    with jobs.running("page-1", "roles", lambda f, t: seen.append((f, t))) as (mine, step):
        with jobs.running("page-2", "roles") as (theirs, _):
            assert not jobs.cancel("page-1", "rank")  # nothing of that kind runs
            assert jobs.cancel("page-1", "roles")
            assert mine.cancelled and not theirs.cancelled
        with pytest.raises(JobCancelled):
            step(0.5, "half way")  # the progress callback is a checkpoint
    assert seen == [(0.5, "half way")]
    assert not jobs.cancel("page-1", "roles")  # finished runs are forgotten


# ---- on the real model -----------------------------------------------------------------------------------

LONG = "Tell me, step by step, how to plant a small vegetable garden in spring."


@pytest.mark.model
def test_a_new_persona_says_it_is_measured_once_and_a_second_reply_says_it_waits(real_backend):
    from playground.chat.session import MEASURING, WAITING, Playground

    pg = Playground(loaded_backend=real_backend)  # nothing measured yet in this Playground
    session = pg.session("pirate")
    first = [e.text for e in session.stream("Ahoy!", max_tokens=3, temperature=0, record=False) if e.kind == "status"]
    again = [e.text for e in session.stream("Ahoy!", max_tokens=3, temperature=0, record=False) if e.kind == "status"]
    assert first == [MEASURING] and again == []
    pg.generation_lock.acquire()  # another reply is being written
    try:
        stream = session.stream("Ahoy!", max_tokens=3, temperature=0, record=False)
        first_event = next(stream)
        assert (first_event.kind, first_event.text, pg.foreground.busy) == ("status", WAITING, True)
    finally:
        pg.generation_lock.release()
    rest = list(stream)
    assert rest[-1].kind == "done" and rest[-1].result.tokens and not pg.foreground.busy


@pytest.mark.model
def test_a_background_reply_gives_way_to_a_chat_and_ends_the_same(real_backend):
    """A Lab reply being written when a chat comes in stops (the chat waits one token), is started again after
    the chat, and at temperature 0 ends exactly as when it ran alone."""
    from playground.chat.session import WAITING, Playground

    pg = Playground(loaded_backend=real_backend)
    alone = pg.session("assistant").send(LONG, max_tokens=40, temperature=0, record=False).reply
    job = BackgroundJob(pg.foreground, "lab reply")
    kinds: list[str] = []
    ended: dict[str, str] = {}

    def lab() -> None:
        for event in pg.in_background(job).session("assistant").stream(LONG, max_tokens=40, temperature=0):
            kinds.append(event.kind)
            if event.kind == "done":
                ended["reply"] = event.result.reply
            time.sleep(0.03)  # a slow reader: the reply holds the model for over a second

    thread = threading.Thread(target=lab)
    thread.start()
    while kinds.count("token") < 3:
        time.sleep(0.01)
    chat = list(pg.session("pirate").stream("Ahoy, matey!", max_tokens=8, temperature=0))
    thread.join()
    assert [e.text for e in chat if e.kind == "status"][:1] == [WAITING]
    assert chat[-1].kind == "done" and chat[-1].result.tokens
    assert "reset" in kinds and kinds[-1] == "done"
    assert ended["reply"] == alone
    assert job.yields >= 1


@pytest.mark.model
def test_a_cancelled_background_reply_stops_and_releases_the_model(real_backend):
    from playground.chat.session import Playground

    pg = Playground(loaded_backend=real_backend)
    job = BackgroundJob(pg.foreground)
    job.cancel()
    with pytest.raises(JobCancelled):
        pg.in_background(job).session("assistant").send(LONG, max_tokens=8, temperature=0)
    assert pg.generation_lock.acquire(blocking=False)
    pg.generation_lock.release()
