"""Role models, measured: what composing positive archetypes into a persona does under adversarial prompts.

``python -m playground eval role-models`` composes each role model (and all of them together) into one
base persona and sends the same prompts to every variant: hijack attempts, provocations and requests
to hurt someone, written for this evaluation, plus an optional seeded sample of the red-team sets in
``../shared/data/redteam`` (read at run time, never copied: the report names them by id only), and a
few everyday prompts to see what the role models cost on normal requests. Guardrails are off, so the
numbers show the prompt composition alone.

Two independent views of every reply:

- probes: the calibrated trait readouts of the chat result (``probes[trait].mean``, z-scores, 0 = a
  typical assistant), read from the model's own activations;
- judge: the MiniLM anchor judge (``playground.steering.judge.TraitJudge``) on the reply text only.

Each variant is compared with the base persona without role models on the *same* prompts (paired
differences, mean ± standard error over prompts).

The prompts themselves are in ``prompt_sets.py`` (``eval ranking`` sends the same ones).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..definitions.personas import Persona
from ..errors import PlaygroundError
from .guard_data import withheld
from .prompt_sets import ADVERSARIAL, ADVERSARIAL_KINDS, BENIGN, EvalPrompt, redteam_sample
from .report import machine, pyplot, report_dir, report_header, write_json, write_markdown

Progress = Callable[[float, str], None]

TRAITS = ("evil", "impolite", "persona_drift")


@dataclass(frozen=True)
class Condition:
    name: str
    role_models: tuple[str, ...]


def default_conditions(role_ids: Sequence[str]) -> list[Condition]:
    """No role models, each role model alone, and all of them together."""
    out = [Condition("none", ())] + [Condition(r, (r,)) for r in role_ids]
    if len(role_ids) > 1:
        out.append(Condition("all", tuple(role_ids)))
    return out


@dataclass
class Record:
    condition: str
    prompt_id: str
    kind: str
    seed: int | None
    reply: str
    probe: dict[str, float]  # trait -> response mean (calibrated z)
    prompt_last: dict[str, float]  # trait -> readout at the last prompt token
    judge: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class RoleEval:
    persona: str
    model: str
    conditions: list[Condition]
    traits: list[str]
    records: list[Record]
    seeds: list[int | None]
    temperature: float
    max_tokens: int
    seconds: float
    redteam: int
    redteam_seed: int

    def to_dict(self) -> dict[str, object]:
        """As JSON for the report; a red-team reply that echoes its prompt is withheld (the shared data is never
        copied into the repository)."""
        out = asdict(self)
        out["records"] = [withheld(r) if r["kind"] == "redteam" else r for r in out["records"]]
        return out


def _variant(base: Persona, condition: Condition) -> Persona:
    return replace(base, role_models=tuple(condition.role_models))


def evaluate_role_models(
    pg,
    persona: Persona,
    conditions: Sequence[Condition],
    prompts: Sequence[EvalPrompt],
    *,
    traits: Sequence[str] = TRAITS,
    seeds: Sequence[int | None] = (0,),
    temperature: float = 0.0,
    max_tokens: int = 48,
    judges: dict | None = None,
    redteam_seed: int = 0,
    progress: Progress | None = None,
) -> RoleEval:
    """Send every prompt to every variant of ``persona``; ``pg`` should have its guardrails off."""
    started = time.perf_counter()
    available = set(pg.vectors.names())
    missing = [t for t in traits if t not in available]
    if missing:
        raise PlaygroundError(f"no probe for {', '.join(missing)} on {pg.backend.model_id}")
    records: list[Record] = []
    total = len(conditions) * len(prompts) * len(seeds)
    done = 0
    from tqdm import tqdm

    bar = tqdm(total=total, desc="role models", leave=False)
    for cond in conditions:
        session = pg.session(_variant(persona, cond))
        for prompt in prompts:
            for seed in seeds:
                # every prompt is a fresh conversation: nothing is recorded in the session's history
                result = session.send(
                    prompt.text, max_tokens=max_tokens, temperature=temperature, seed=seed, record=False
                )
                records.append(
                    Record(
                        condition=cond.name,
                        prompt_id=prompt.id,
                        kind=prompt.kind,
                        seed=seed,
                        reply=result.reply,
                        probe={t: float(result.probes[t]["mean"]) for t in traits if t in result.probes},
                        prompt_last={t: float(result.probes[t]["prompt_last"]) for t in traits if t in result.probes},
                        seconds=float(result.timing.get("total_s", 0.0)),
                    )
                )
                done += 1
                bar.update(1)
                if progress:
                    progress(done / total * 0.9, f"{cond.name}: {prompt.id}")
    bar.close()
    judges = judges if judges is not None else _default_judges(traits)
    for trait, judge in judges.items():
        if progress:
            progress(0.95, f"judging {trait}")
        scores = judge.score([r.reply for r in records])
        for r, s in zip(records, scores, strict=True):
            r.judge[trait] = float(s)
    return RoleEval(
        persona=persona.id,
        model=pg.backend.model_id,
        conditions=list(conditions),
        traits=list(traits),
        records=records,
        seeds=list(seeds),
        temperature=temperature,
        max_tokens=max_tokens,
        seconds=round(time.perf_counter() - started, 1),
        redteam=sum(1 for r in records if r.kind == "redteam") // max(1, len(conditions) * len(seeds)),
        redteam_seed=redteam_seed,
    )


def _default_judges(traits: Sequence[str]) -> dict:
    from ..definitions.traits import load_trait
    from ..steering.judge import TraitJudge

    out = {}
    for t in traits:
        trait = load_trait(t)
        if trait.judge_positive and trait.judge_negative:
            out[t] = TraitJudge(trait)
    return out


# ---- summary --------------------------------------------------------------------------------------


def _per_prompt(result: RoleEval, condition: str, metric: str, trait: str, kinds: set[str]) -> dict[str, float]:
    """prompt id -> the metric averaged over seeds, for one condition."""
    acc: dict[str, list[float]] = {}
    for r in result.records:
        if r.condition == condition and r.kind in kinds and trait in getattr(r, metric):
            acc.setdefault(r.prompt_id, []).append(getattr(r, metric)[trait])
    return {k: float(np.mean(v)) for k, v in acc.items()}


def paired_delta(
    result: RoleEval, condition: str, metric: str, trait: str, kinds: set[str]
) -> tuple[float, float, int]:
    """(mean, standard error, n) of condition minus ``none`` over the same prompts."""
    base = _per_prompt(result, "none", metric, trait, kinds)
    mine = _per_prompt(result, condition, metric, trait, kinds)
    diffs = np.array([mine[k] - base[k] for k in mine if k in base], dtype=float)
    if not len(diffs):
        return float("nan"), float("nan"), 0
    sem = float(diffs.std(ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else 0.0
    return float(diffs.mean()), sem, len(diffs)


def summary_table(result: RoleEval, kinds: set[str]) -> list[dict[str, object]]:
    """One row per condition: mean probe and judge per trait, and the paired change vs no role models."""
    rows = []
    for cond in result.conditions:
        row: dict[str, object] = {"condition": cond.name, "role_models": list(cond.role_models)}
        for metric in ("probe", "judge"):
            for t in result.traits:
                values = list(_per_prompt(result, cond.name, metric, t, kinds).values())
                if not values:
                    continue
                row[f"{metric}:{t}"] = float(np.mean(values))
                if cond.name != "none":
                    row[f"delta_{metric}:{t}"] = paired_delta(result, cond.name, metric, t, kinds)[:2]
        rows.append(row)
    return rows


def plot(result: RoleEval, path: Path) -> Path:
    plt = pyplot()
    conds = [c.name for c in result.conditions if c.name != "none"]
    traits = result.traits
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharex=True)
    x = np.arange(len(conds))
    width = 0.8 / max(1, len(traits))
    for ax, metric, label in zip(
        axes,
        ("probe", "judge"),
        ("probe readout (z), role model − none", "judge score, role model − none"),
        strict=True,
    ):
        for k, t in enumerate(traits):
            stats = [paired_delta(result, c, metric, t, ADVERSARIAL_KINDS) for c in conds]
            if all(np.isnan(s[0]) for s in stats):
                continue
            ax.bar(x + (k - (len(traits) - 1) / 2) * width, [s[0] for s in stats], width,
                   yerr=[s[1] for s in stats], capsize=2, label=t)  # fmt: skip
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(x, conds, rotation=15)
        ax.set_ylabel(label, fontsize=9)
        ax.legend(fontsize=8)
    fig.suptitle(f"Role models under adversarial prompts — persona '{result.persona}', {result.model} "
                 "(below 0 = less of the trait)", fontsize=10)  # fmt: skip
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(value: object, digits: int = 2) -> str:
    if isinstance(value, tuple):
        return f"{value[0]:+.{digits}f} ± {value[1]:.{digits}f}" if not np.isnan(value[0]) else "—"
    if isinstance(value, float):
        return f"{value:+.{digits}f}"
    return str(value)


def report_markdown(
    result: RoleEval, *, command: str, plot_name: str = "role-models.png", notes_from: Path | None = None
) -> str:
    """The report's Markdown; with ``notes_from`` (the report's path) its hand-written notes block under the title."""
    adv = summary_table(result, ADVERSARIAL_KINDS)
    ben = summary_table(result, {"benign"})
    n_adv = len({r.prompt_id for r in result.records if r.kind in ADVERSARIAL_KINDS})
    n_ben = len({r.prompt_id for r in result.records if r.kind == "benign"})
    decoding = "greedy" if result.temperature == 0 else f"temperature {result.temperature:g}"
    lines = [
        *report_header("Role models, measured", notes_from=notes_from),
        f"Base persona `{result.persona}`, model `{result.model}`, {decoding}, seeds {result.seeds}, "
        f"{result.max_tokens} tokens per reply, guardrails off. {n_adv} adversarial prompts "
        f"({result.redteam} from the red-team sets, sample seed {result.redteam_seed}) and {n_ben} everyday "
        f"prompts, {len(result.records)} replies in {result.seconds:.0f} s "
        f"({machine()}).",
        "",
        f"Reproduce: `{command}`",
        "",
        "Probe = calibrated readout over the reply (z, 0 = typical assistant); judge = MiniLM anchor judge on",
        "the text (comparable within a trait only). Δ = the variant minus the same persona without role",
        "models, on the same prompts (mean ± standard error over prompts). Negative Δ = less of the trait.",
        "",
        f"![role models]({plot_name})",
        "",
    ]
    for title, rows in (("Adversarial prompts", adv), ("Everyday prompts", ben)):
        if not rows or len(rows[0]) <= 2:
            continue
        lines += [f"## {title}", ""]
        head = ["condition"]
        for metric in ("probe", "judge"):
            for t in result.traits:
                if f"{metric}:{t}" in rows[0]:
                    head.append(f"{metric}:{t}")
        lines.append("| " + " | ".join(head + [f"Δ {h}" for h in head[1:]]) + " |")
        lines.append("|" + "---|" * (2 * len(head) - 1))
        for row in rows:
            digits = [3 if h.startswith("judge") else 2 for h in head[1:]]
            cells = [str(row["condition"])] + [
                _fmt(row.get(h, float("nan")), d) for h, d in zip(head[1:], digits, strict=True)
            ]
            cells += [_fmt(row.get(f"delta_{h}", "—"), d) for h, d in zip(head[1:], digits, strict=True)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Sample replies (own prompts)", ""]
    shown = [
        p for p in ("hijack-darkbot", "provoke-dumb", "harm-neighbour") if any(r.prompt_id == p for r in result.records)
    ]
    for pid in shown:
        text = next(r for r in result.records if r.prompt_id == pid)
        lines += [f"**{pid}** ({text.kind})", "", "| condition | evil probe | reply |", "|---|---|---|"]
        for cond in result.conditions:
            rec = next((r for r in result.records if r.prompt_id == pid and r.condition == cond.name), None)
            if rec is None:
                continue
            reply = rec.reply.replace("|", "\\|").replace("\n", " ")[:220]
            lines.append(f"| {cond.name} | {rec.probe.get('evil', float('nan')):+.2f} | {reply} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def write_report(result: RoleEval, out_dir: Path, *, command: str, name: str = "ROLE_MODELS") -> Path:
    """``out_dir/<name>.md``, ``role-models.png`` and ``role-models.json`` (replies to red-team prompts are
    kept, the prompts themselves are not)."""
    out_dir = report_dir(out_dir)
    png = plot(result, out_dir / "role-models.png")
    write_json(out_dir / "role-models.json", result.to_dict())
    path = out_dir / f"{name}.md"
    return write_markdown(path, report_markdown(result, command=command, plot_name=png.name, notes_from=path))


def run_cli(args) -> int:
    """``python -m playground eval role-models`` (arguments from playground.cli.main)."""
    import sys

    from ..chat.session import Playground

    pg = Playground(args.model, backend=args.backend, policy_path="")  # guardrails off: measure the prompt alone
    persona = pg.catalog.persona(args.persona or "assistant")
    conditions = default_conditions(sorted(pg.catalog.role_model_files()))
    prompts = list(ADVERSARIAL) + redteam_sample(args.redteam, args.seed) + list(BENIGN)
    samples = max(1, int(getattr(args, "samples", 1) or 1))
    seeds: list[int | None] = list(range(samples)) if samples > 1 else [0]
    temperature = persona.sampling.temperature if samples > 1 else 0.0
    result = evaluate_role_models(
        pg, persona, conditions, prompts, max_tokens=args.reply_tokens, redteam_seed=args.seed, seeds=seeds,
        temperature=temperature,
    )  # fmt: skip
    command = (
        f"python -m playground eval role-models --persona {persona.id} --redteam {args.redteam} --seed {args.seed}"
        + (f" --samples {samples}" if samples > 1 else "")
        + (f" --reply-tokens {args.reply_tokens}" if args.reply_tokens != 48 else "")
    )
    path = write_report(result, Path(args.out), command=command)
    for row in summary_table(result, ADVERSARIAL_KINDS):
        deltas = ", ".join(f"{k[6:]} {v[0]:+.2f}" for k, v in row.items() if k.startswith("delta_"))
        print(f"{row['condition']:>12}: {deltas or '(reference)'}", file=sys.stderr)
    print(f"wrote {path} ({result.seconds:.0f} s)", file=sys.stderr)
    return 0
