"""``python -m playground prepare --model M``: every instrument of the playground for one model, in one command.

Steps, each shown on a progress bar and saved as soon as it is done (so an interrupted run resumes where it
stopped; ``--force`` starts over): extract each trait (``extract``; the persona_drift axis is one of them),
fit the live probes jointly and re-validate what steering strength 1 means (``calibrate``), train the prompt
screen (``train-screen``), and write a model card. Everything goes into the user cache, where chat, the UI and
the API look for a model's files first.

The model card (``<cache>/<model>/MODEL_CARD.md`` and ``model_card.json``) says per trait how well the probe
separated held-out replies (the extraction's held-out questions, and the live probe's held-out check), the
layers chosen, what strength 1 became and the share of degenerate replies there, the screen's cross-validated
AUROC, and how long each step took.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..backends.base import Backend
from ..definitions.personas import Catalog
from ..definitions.traits import load_trait
from ..errors import PlaygroundError
from ..files import write_atomic
from ..steering.store import VectorStore, user_cache_dir
from .prepare_checks import check_screen, guarded_traits, measure_guard_thresholds

Log = Callable[[str], None]
STATE = "prepare_state.json"


def _write(path: Path, text: str) -> None:
    write_atomic(path, text.encode("utf-8"), overwrite=True)


def card_folder(model_id: str) -> Path:
    return user_cache_dir() / model_id


def _state(folder: Path, force: bool) -> dict[str, Any]:
    path = folder / STATE
    if force or not path.is_file():
        return {"done": [], "seconds": {}}
    return json.loads(path.read_text())


def _save_state(folder: Path, state: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / STATE, json.dumps(state, indent=1))


# a step that runs makes these later steps' results out of date (they run again)
INVALIDATES = {
    "extract": ("calibrate", "guard thresholds"),
    "calibrate": ("guard thresholds",),
    "screen": ("screen check",),
}


def plan_steps(names: Sequence[str], have: Sequence[str], catalog: Catalog, screen: bool) -> list[str]:
    """The steps of a run: extract each trait, calibrate, then the prompt screen and its held-out check, then the
    reply thresholds of the guard (when a trait the policy guards is prepared)."""
    steps = [f"extract {t}" for t in names] + ["calibrate"]
    steps += ["screen", "screen check"] if screen else []
    steps += ["guard thresholds"] if guarded_traits(catalog, sorted({*names, *have})) else []
    return steps


def prepare_model(
    backend: Backend,
    traits: Sequence[str] | None = None,
    *,
    screen: bool = True,
    force: bool = False,
    catalog: Catalog | None = None,
    log: Log | None = None,
    guard_messages: Sequence[str] | None = None,
    strength_questions: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Run the steps not yet done for ``backend``'s model; returns the model card (also written to disk).
    ``guard_messages`` / ``strength_questions``: calibration messages for the guard thresholds / questions of the
    strength check other than the shipped ones (tests: a few)."""
    catalog = catalog or Catalog()
    names = list(traits or sorted(catalog.trait_files()))
    unknown = [t for t in names if t not in catalog.trait_files()]
    if unknown:
        known = ", ".join(sorted(catalog.trait_files()))
        raise PlaygroundError(f"--traits: unknown {', '.join(unknown)} (known: {known})")
    say = log or (lambda _m: None)
    folder, store = card_folder(backend.model_id), VectorStore(backend.model_id)
    state = _state(folder, force)
    steps = plan_steps(names, store.names(), catalog, screen)
    bar = tqdm(steps, desc=f"prepare {backend.model_id}", file=sys.stderr)
    for step in bar:
        bar.set_postfix_str(step)
        if step in state["done"]:
            say(f"{step}: done before, kept")
            continue
        started = time.perf_counter()
        outcome = _run_step(backend, store, step, names, catalog, say, (guard_messages, strength_questions))
        if outcome is not None:
            state.setdefault("results", {})[step] = outcome
        state["seconds"][step] = round(time.perf_counter() - started, 1)
        stale = INVALIDATES.get(step.split(" ")[0] if step.startswith("extract ") else step, ())
        state["done"] = sorted({*state["done"], step} - set(stale))
        _save_state(folder, state)
    card = model_card(backend, store, names, state, screened=screen)
    write_card(card, folder)
    return card


def _run_step(
    backend: Backend,
    store: VectorStore,
    step: str,
    names: list[str],
    catalog: Catalog,
    say: Log,
    test_sets: tuple[Sequence[str] | None, Sequence[str] | None],
) -> dict[str, Any] | None:
    """One step; what it measured, when the card shows it (the screen check, the guard thresholds).
    ``test_sets``: the guard messages and strength questions to use instead of the shipped ones (None: shipped)."""
    guard_messages, strength_questions = test_sets
    if step.startswith("extract "):
        from ..steering.extraction import extract_with_replies

        vec, replies = extract_with_replies(backend, load_trait(step.split(" ", 1)[1], catalog), log=say)
        store.save(vec, replies=replies)
    elif step == "calibrate":
        from ..steering.probe_training import fit_all_probes
        from ..steering.strength_check import validate_strengths

        if len(store.names()) >= 2:  # the joint fit makes each probe specific against the other traits
            fit_all_probes(backend, store, log=say)
        else:
            say("one trait only: its live probe reads the steering direction (no joint fit; see notices)")
        validate_strengths(backend, store, names, log=say, questions=strength_questions)
    elif step == "screen":
        from ..guard.screening import guard_dirs
        from ..guard.screening_training import train_screening

        probe = train_screening(backend, catalog=catalog, log=say)
        probe.save(guard_dirs(backend.model_id)[0])
    elif step == "screen check":
        return check_screen(backend, catalog, say)
    elif step == "guard thresholds":
        return measure_guard_thresholds(backend, catalog, say, guard_messages)
    return None


def _trait_row(store: VectorStore, name: str) -> dict[str, Any]:
    vec = store.get(name)
    held = (vec.extra.get("held_out") or {}).get(str(vec.probe_layer), {})
    check = vec.extra.get("strength_check") or {}
    chosen = f"{check.get('multiple', 1):g}" if check else None
    measured = (vec.probe.reliability or {}) if vec.probe is not None else {}
    check_kind = "heldout" if "heldout" in measured else "cv" if "cv" in measured else None
    live = measured.get(check_kind, {}) if check_kind else {}
    return {
        "probe_layer": vec.probe_layer,
        "steer_layer": vec.steer_layer,
        "extraction_heldout_auroc": round(float(held["auroc"]), 3) if "auroc" in held else None,
        "extraction_heldout_effect": round(float(held["effect"]), 2) if "effect" in held else None,
        "live_probe_auroc": live.get("auroc"),
        "live_probe_specificity": live.get("specificity"),
        "live_probe_check": check_kind,
        "strength1_multiple": check.get("multiple"),
        "strength1_degenerate_share": (check.get("degenerate_share") or {}).get(chosen) if chosen else None,
    }


def model_card(
    backend: Backend, store: VectorStore, names: list[str], state: dict[str, Any], screened: bool
) -> dict[str, Any]:
    from ..guard.screening import load_screening

    screening = load_screening(backend.model_id) if screened else None
    cv = (screening.meta.get("cv") or {}) if screening is not None else {}
    results = state.get("results") or {}
    return {
        "model": backend.model_id,
        "backend": backend.name,
        "layers": backend.n_layers,
        "traits": {name: _trait_row(store, name) for name in names if name in store.names()},
        "screen": {
            "cv_auroc": (cv.get("auroc") or {}).get("all"),
            "thresholds": screening.meta.get("thresholds"),
            "held_out": results.get("screen check"),
        }
        if screening is not None
        else None,
        "guard_thresholds": results.get("guard thresholds"),
        "seconds": state["seconds"],
        "total_seconds": round(sum(state["seconds"].values()), 1),
    }


def _cell(value: Any) -> str:
    return "—" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value)


def _screen_line(screen: dict[str, Any] | None) -> str:
    if not screen:
        return "not trained (`--no-screen`)."
    line = f"cross-validated AUROC {_cell(screen['cv_auroc'])}, thresholds {screen['thresholds']}."
    held = screen.get("held_out") or {}
    if "skipped" in held:
        return f"{line} Held-out check skipped: {held['skipped']}"
    if held:
        per_set = ", ".join(f"{k} {v:.0%} of {held['prompts'][k]}" for k, v in held["recall"].items())
        line += (
            f" Held-out check (assistant persona, at act >= {held['act_threshold']:g}): recall {per_set}; "
            f"{held['false_positive_rate']:.1%} of {held['benign_prompts']} held-out benign prompts flagged; "
            f"AUROC {_cell(held['auroc'])}."
        )
    return line


def _thresholds_line(found: dict[str, Any] | None) -> str:
    if not found:
        return "not measured (no trait the policy guards was prepared)."
    return ", ".join(f"{s} warn {t['warn']:.2f} / act {t['act']:.2f}" for s, t in found.items()) + "."


def write_card(card: dict[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "model_card.json", json.dumps(card, indent=1))
    cols = list(next(iter(card["traits"].values()), {}))
    lines = [
        f"# Model card: {card['model']} ({card['backend']}, {card['layers']} layers)",
        "",
        "Written by `python -m playground prepare`. AUROC: how well the trait's probe separates replies written "
        "under the trait's eliciting vs suppressing instructions, on questions left out of the fit "
        "(extraction: the trait's own held-out questions; live probe: the joint fit's cross-instruction check `cv`, or "
        "`heldout` after `eval traits --write`). Specificity: how little the probe reads the other traits.",
        "",
        "| trait | " + " | ".join(c.replace("_", " ") for c in cols) + " |",
        "|---|" + "---|" * len(cols),
        *[f"| {t} | " + " | ".join(_cell(row[c]) for c in cols) + " |" for t, row in card["traits"].items()],
        "",
        "Prompt screen: " + _screen_line(card["screen"]),
        "",
        "Guard reply thresholds (measured on this model's ordinary replies; the shipped policy uses them here): "
        + _thresholds_line(card.get("guard_thresholds")),
        "",
        f"Time: {card['total_seconds']:.0f} s in all; "
        + ", ".join(f"{k} {v:.0f} s" for k, v in card["seconds"].items())
        + ".",
        "",
    ]
    path = folder / "MODEL_CARD.md"
    _write(path, "\n".join(lines))
    return path


__all__ = ["card_folder", "model_card", "prepare_model", "write_card"]
