"""Screening data: the hijack and benign prompt sets the screening probe is trained and evaluated on.

``personas/guard/screening.yml`` holds hijack prompts (one of :data:`HIJACK_STYLES`) and benign prompts
chosen to cover what a drift axis confuses with a hijack: long pasted texts, harmless role-play requests,
formatting and creative asks (:data:`BENIGN_GROUPS`). ``personas/guard/benign_eval.yml`` holds different
benign prompts for evaluation only; :func:`overlap_issues` says when the two share a prompt, which would
leak training data into the evaluation. :func:`load_screening_data` validates a file with FILE:LINE:COL
errors, all of them at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..definitions.schema import did_you_mean
from ..definitions.yaml_source import load_yaml_file
from ..errors import Issue, ValidationError
from ..paths import REPO_ROOT

GUARD_DATA = REPO_ROOT / "personas" / "guard"
TRAIN_FILE = GUARD_DATA / "screening.yml"
EVAL_FILE = GUARD_DATA / "benign_eval.yml"
HIJACK_STYLES = (
    "rules_removal",
    "new_persona",
    "developer_mode",
    "ignore_instructions",
    "token_game",
    "dual_answer",
    "prompt_leak",
    "fiction_wrapper",
    "injected",
    "long_multi",
)
BENIGN_GROUPS = ("short_question", "long_text", "role_play", "formatting", "creative")
DATA_VERSION = 1  # the 'version' a screening data file must declare
MAX_TEXT_CHARS = 40_000
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class ScreenPrompt:
    id: str
    label: int  # 1 = hijack, 0 = benign
    kind: str  # hijack style or benign group
    text: str
    where: str  # "file:line"


@dataclass
class ScreeningData:
    file: str
    hijack: list[ScreenPrompt]
    benign: list[ScreenPrompt]

    @property
    def prompts(self) -> list[ScreenPrompt]:
        return self.hijack + self.benign


def load_screening_data(path: str | Path = TRAIN_FILE, *, require_hijack: bool = True) -> ScreeningData:
    """Read and validate a screening data file; raises ValidationError listing every FILE:LINE:COL problem."""
    doc = load_yaml_file(path)
    data = doc.data
    if not isinstance(data, dict):
        raise ValidationError(
            [doc.issue((), "a screening file must be a mapping with 'version', 'hijack' and 'benign'")]
        )
    issues: list[Issue] = []
    for key in data:
        if key not in ("version", "hijack", "benign"):
            hint = did_you_mean(str(key), ["version", "hijack", "benign"])
            issues.append(doc.issue((key,), f"unknown field '{key}'{hint}", key=True))
    if data.get("version") != DATA_VERSION:
        issues.append(doc.issue(("version",), f"'version' must be {DATA_VERSION}, got {data.get('version')!r}"))
    seen: dict[str, int] = {}
    out: dict[str, list[ScreenPrompt]] = {"hijack": [], "benign": []}
    for section, kind_key, allowed in (("hijack", "style", HIJACK_STYLES), ("benign", "group", BENIGN_GROUPS)):
        items = data.get(section)
        if items is None:
            if section == "benign" or require_hijack:
                issues.append(doc.issue((), f"missing required field '{section}' (a list of prompts)"))
            continue
        if not isinstance(items, list):
            issues.append(doc.issue((section,), f"'{section}' must be a list of {{id, {kind_key}, text}} entries"))
            continue
        for i, item in enumerate(items):
            at = (section, i)
            if not isinstance(item, dict):
                issues.append(doc.issue(at, f"{section}[{i}] must be a mapping with id, {kind_key} and text"))
                continue
            for key in item:
                if key not in ("id", kind_key, "text"):
                    hint = did_you_mean(str(key), ["id", kind_key, "text"])
                    issues.append(doc.issue(at + (key,), f"unknown field '{key}' in {section}[{i}]{hint}", key=True))
            pid, kind, text = item.get("id"), item.get(kind_key), item.get("text")
            ok = True
            if not isinstance(pid, str) or not _ID.match(pid):
                issues.append(
                    doc.issue(at + ("id",), f"{section}[{i}].id must be letters, digits, '-' or '_', got {pid!r}")
                )
                ok = False
            elif pid in seen:
                issues.append(doc.issue(at + ("id",), f"duplicate id '{pid}' (first defined at line {seen[pid]})"))
                ok = False
            else:
                seen[pid] = doc.where(at + ("id",))[0]
            if kind not in allowed:
                hint = did_you_mean(str(kind), list(allowed)) if isinstance(kind, str) else ""
                known = ", ".join(allowed)
                issues.append(
                    doc.issue(at + (kind_key,), f"{section}[{i}].{kind_key} is {kind!r}{hint} (known: {known})")
                )
                ok = False
            if not isinstance(text, str) or not text.strip():
                issues.append(doc.issue(at + ("text",), f"{section}[{i}].text must be a non-empty string"))
                ok = False
            elif len(text) > MAX_TEXT_CHARS:
                issues.append(
                    doc.issue(
                        at + ("text",), f"{section}[{i}].text is {len(text)} characters; the limit is {MAX_TEXT_CHARS}"
                    )
                )
                ok = False
            if ok:
                line = doc.where(at)[0]
                label = 1 if section == "hijack" else 0
                out[section].append(ScreenPrompt(pid, label, kind, text.strip(), f"{doc.file}:{line}"))
    if issues:
        raise ValidationError(sorted(issues, key=lambda x: (x.line, x.column)))
    return ScreeningData(str(path), out["hijack"], out["benign"])


def overlap_issues(train: ScreeningData, held_out: ScreeningData) -> list[Issue]:
    """Held-out prompts that also appear (same text) in the training file: evaluation would leak."""
    texts = {" ".join(p.text.lower().split()) for p in train.prompts}
    issues = []
    for p in held_out.prompts:
        if " ".join(p.text.lower().split()) in texts:
            file, line = p.where.rsplit(":", 1)
            issues.append(Issue(file, int(line), 1, f"prompt '{p.id}' also appears in {train.file}"))
    return issues
