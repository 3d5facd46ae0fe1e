"""How far ordinary replies reach on each probe: the data the reply-phase guard thresholds are derived from.

``python -m playground guard-thresholds`` sends every message of ``personas/guard/reply_calibration.yml`` to every
shipped persona (unguarded, unsteered, the persona's own sampling with a fixed seed per message), records each
signal's windowed peak counted from the persona's room (``playground.guard.reply_thresholds``), and derives the
thresholds. With ``--ship`` it stores the peaks under ``models/<model>/guard/reply_thresholds.json`` and rewrites
the numbers of ``personas/policies/default.yaml``; ``tests/test_reply_thresholds.py`` fails when the two disagree.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..chat.session import Playground
from ..definitions.personas import Catalog
from ..errors import PlaygroundError
from ..files import write_atomic
from ..guard.model_thresholds import PEAKS_FILE
from ..guard.policy import DEFAULT_POLICY_PATH, Policy, load_policy, parse_policy
from ..guard.reply_thresholds import (
    ACT_RATE,
    CALIBRATION_FILE,
    WARN_RATE,
    Thresholds,
    derive_thresholds,
    load_calibration_messages,
    reached,
    reply_peaks,
    with_thresholds,
)
from ..paths import REPO_ROOT, SHIPPED_PERSONAS

MAX_TOKENS = 64


@dataclass(frozen=True)
class PeakRecord:
    persona: str
    message: str
    tokens: int
    peaks: dict[str, float]


def shipped_personas() -> list[str]:
    return sorted(Catalog([SHIPPED_PERSONAS]).persona_files())


def collect_peaks(
    pg: Playground,
    personas: Sequence[str],
    messages: Sequence[str],
    *,
    window: int,
    max_tokens: int = MAX_TOKENS,
    progress: bool = True,
) -> list[PeakRecord]:
    """Every persona answers every message without a guard; each reply's windowed peaks above its room."""
    jobs = [(p, k, m) for p in personas for k, m in enumerate(messages)]
    records = []
    rooms: dict[str, dict[str, float]] = {}
    for persona, k, message in tqdm(jobs, desc="ordinary replies", disable=not progress, file=sys.stderr):
        session = pg.session(persona)
        if persona not in rooms:
            with pg.generation_lock:
                rooms[persona] = pg.guard_room(session.persona, session.system_prompt).reply
        with pg.using_policy(Policy(name="none")):  # no rules: nothing may change the replies being measured
            result = session.send(message, max_tokens=max_tokens, seed=k, record=False)
        per_token = {t: p["per_token"] for t, p in result.probes.items()}
        records.append(PeakRecord(persona, message, len(result.tokens), reply_peaks(per_token, rooms[persona], window)))
    return records


def calibration_digest(messages: Sequence[str], personas: Sequence[str], window: int, max_tokens: int) -> str:
    text = json.dumps([list(messages), list(personas), window, max_tokens])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def peaks_document(
    records: Sequence[PeakRecord], thresholds: dict[str, Thresholds], *, model: str, window: int, max_tokens: int
) -> dict[str, Any]:
    personas = list(dict.fromkeys(r.persona for r in records))
    messages = list(dict.fromkeys(r.message for r in records))
    return {
        "model": model,
        "calibration_file": str(CALIBRATION_FILE.relative_to(REPO_ROOT)),
        "digest": calibration_digest(messages, personas, window, max_tokens),
        "window": window,
        "max_tokens": max_tokens,
        "rates": {"warn": WARN_RATE, "act": ACT_RATE},
        "thresholds": {s: asdict(t) for s, t in thresholds.items()},
        "reached": {level: reached([r.peaks for r in records], thresholds, level) for level in ("warn", "act")},
        "records": [asdict(r) for r in records],
    }


def read_peaks(path: Path) -> list[PeakRecord]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [PeakRecord(**r) for r in data["records"]]


def reused_peaks(path: Path, digest: str) -> list[PeakRecord]:
    """The stored peaks of ``path``, if they were measured on the same messages, personas, window and length."""
    if not path.is_file():
        raise PlaygroundError(f"{path}: no stored peaks to reuse; run without --reuse to measure them")
    stored = json.loads(path.read_text(encoding="utf-8")).get("digest")
    if stored != digest:
        raise PlaygroundError(f"{path}: measured on other messages, personas or settings; run without --reuse")
    return read_peaks(path)


def derive_and_write(
    pg: Playground,
    out_dir: Path,
    *,
    policy_path: Path = DEFAULT_POLICY_PATH,
    update_policy: bool = False,
    max_tokens: int = MAX_TOKENS,
    reuse: Path | None = None,
    messages: Sequence[str] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Thresholds]:
    """Collect the peaks (or ``reuse`` a peaks file of the same messages, personas, window and length), derive the
    thresholds of the policy's reply-phase rules, write the peaks file and (``update_policy``) the policy's numbers.
    The policy file is only replaced by text that still validates. ``messages``: other calibration messages than
    the shipped file's (tests use a few)."""
    policy = load_policy(policy_path, pg.catalog)
    messages = list(messages) if messages is not None else load_calibration_messages()
    personas = shipped_personas()
    if reuse is not None:
        records = reused_peaks(reuse, calibration_digest(messages, personas, policy.window, max_tokens))
        log(f"reusing {len(records)} stored peaks from {reuse}")
    else:
        records = collect_peaks(pg, personas, messages, window=policy.window, max_tokens=max_tokens)
    signals = [s for s, r in policy.rules.items() if r.checks("reply") and s in records[0].peaks]
    thresholds = derive_thresholds([r.peaks for r in records], signals)
    doc = peaks_document(records, thresholds, model=pg.backend.model_id, window=policy.window, max_tokens=max_tokens)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / PEAKS_FILE, (json.dumps(doc, indent=1) + "\n").encode(), overwrite=True)
    log(f"wrote {out_dir / PEAKS_FILE} ({len(records)} replies of {len(personas)} personas)")
    for s, t in thresholds.items():
        log(f"  {s}: warn {t.warn:.2f}  act {t.act:.2f}")
    log(f"  ordinary replies reaching any warn: {doc['reached']['warn']:.1%}, any act: {doc['reached']['act']:.1%}")
    if update_policy:
        text = with_thresholds(policy_path.read_text(encoding="utf-8"), thresholds)
        parse_policy(text.encode(), str(policy_path), pg.catalog)  # raises before anything is written
        write_atomic(policy_path, text.encode(), overwrite=True)
        log(f"updated {policy_path}")
    return thresholds
