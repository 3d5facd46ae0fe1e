"""What each live probe means, in words for a hover: the trait's definition and two example texts from its trait
file (``description``, ``judge.positive``/``negative``), what the number is (a calibrated z) and how far the probe
can be trusted (its measured AUROC, held-out when evaluated; ``ProbeSet.reliability``).

Trait files are read once per version on disk (cached by path and modification time), so the panels can ask on
every redraw."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..definitions.personas import Catalog
from ..definitions.yaml_source import load_yaml_file
from ..errors import PlaygroundError
from .probe_direction import RELIABLE_AUROC

Z_MEANING = (
    "The number is a calibrated z: 0 = a typical assistant reply, +1 = one spread (standard deviation) of typical "
    "replies further toward {trait}, negative = less {trait} than typical."
)


@dataclass(frozen=True)
class TraitText:
    """The words of a trait file the hover shows."""

    description: str = ""
    high: str = ""  # an example text that reads high (judge.positive)
    low: str = ""  # one that reads low (judge.negative)


@lru_cache(maxsize=64)
def _trait_text(path: str, mtime_ns: int) -> TraitText:
    data = load_yaml_file(path, lenient=True).data
    if not isinstance(data, dict):
        return TraitText()
    judge = data.get("judge") if isinstance(data.get("judge"), dict) else {}

    def first(key: str) -> str:
        items = judge.get(key) or []
        return str(items[0]).strip() if isinstance(items, list) and items else ""

    return TraitText(" ".join(str(data.get("description") or "").split()), first("positive"), first("negative"))


def trait_texts(catalog: Catalog) -> dict[str, TraitText]:
    """The definition and examples of every trait file the catalog knows (unreadable files are left out)."""
    out = {}
    for name, path in catalog.trait_files().items():
        try:
            out[name] = _trait_text(str(path), path.stat().st_mtime_ns)
        except (OSError, PlaygroundError):
            continue
    return out


def quality_note(rel: Mapping[str, Any] | None) -> str:
    """How good the probe is, from its measured reliability (``ProbeSet.reliability()[trait]``)."""
    if not rel or rel.get("auroc") is None:
        return "Probe quality: not measured on this model (python -m playground calibrate fits and measures it)."
    where = "held-out AUROC" if rel.get("source") == "heldout" else "cross-instruction AUROC"
    spec = f", specificity {rel['specificity']:.2f}" if rel.get("specificity") is not None else ""
    verdict = "reliable" if rel.get("reliable") else f"unreliable: below {RELIABLE_AUROC:.2f}, read it with care"
    return (
        f"Probe quality: {where} {rel['auroc']:.2f}{spec} ({verdict}; AUROC 1.0 = always tells this trait's replies "
        "from a neutral assistant's, 0.5 = chance)."
    )


def explain(trait: str, text: TraitText | None, rel: Mapping[str, Any] | None) -> str:
    """The hover text of one probe: meaning, examples, the number, the probe's quality (one paragraph per line)."""
    lines = [f"{trait}: {text.description}" if text and text.description else f"{trait}: no trait file describes it."]
    if text and text.high:
        lines.append(f"Reads high, e.g. “{text.high}”")
    if text and text.low:
        lines.append(f"Reads low, e.g. “{text.low}”")
    lines.append(Z_MEANING.format(trait=trait))
    lines.append(quality_note(rel))
    return "\n".join(lines)


def probe_notes(catalog: Catalog, reliability: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """{trait: hover text} for every probe in ``reliability`` (``ProbeSet.reliability()``)."""
    texts = trait_texts(catalog)
    return {t: explain(t, texts.get(t), rel) for t, rel in reliability.items()}
