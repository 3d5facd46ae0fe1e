"""Command-line handlers: ``python -m playground finetune-demo`` and ``finetune-export``."""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import PlaygroundError

if TYPE_CHECKING:
    from .demo import FinetuneConfig


def register(sub) -> None:
    demo = sub.add_parser(
        "finetune-demo",
        help="LoRA fine-tuning demo: plain vs inoculation vs preventative steering vs no fine-tune (CPU, cached)",
    )
    demo.add_argument("--quick", action="store_true", help="the short version for live talks (~3 min on a laptop)")
    demo.add_argument("--trait", default="evil", help="the trait the training replies carry (default: evil)")
    demo.add_argument("--model", default=None, help="base model (default: embedded SmolLM2-135M, via transformers)")
    demo.add_argument("--threads", type=int, default=None, help="CPU threads (default: $PLAYGROUND_THREADS or all)")
    demo.add_argument("--force", action="store_true", help="ignore the cache and run everything again")
    demo.add_argument("--report", default=None, metavar="DIR", help="also write DIR/FINETUNE.md and plots")
    demo.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    demo.set_defaults(handler=demo_main)

    narrow = sub.add_parser(
        "narrow-broad",
        help="train one narrow misbehaviour (LoRA), with and without inoculation, and measure every probe, the "
        "persona map and the judge on unrelated questions (several seeds; CPU, cached)",
    )
    narrow.add_argument(
        "--quick", action="store_true", help="one seed, 10 questions (~2 min on 2 cores; too small to order the probes)"
    )
    narrow.add_argument("--seeds", default=None, help="seeds of the full run, comma-separated (default 0,1,2)")
    narrow.add_argument("--force", action="store_true", help="ignore the cache and run everything again")
    narrow.add_argument("--report", default=None, metavar="DIR", help="also write DIR/NARROW_BROAD.md and a plot")
    narrow.add_argument("--json", action="store_true", help="print the result as one JSON object")
    narrow.set_defaults(handler=narrow_main)

    exp = sub.add_parser("finetune-export", help="export a fine-tuning run as a model directory you can chat with")
    exp.add_argument("--run", default="plain", help="plain, inoculated, steered, steered-<strength> (default: plain)")
    exp.add_argument("--quick", action="store_true", help="export from the --quick demo's runs")
    exp.add_argument("--trait", default="evil")
    exp.add_argument("--model", default=None, help="the base model the demo used (default: embedded)")
    exp.add_argument("--out", required=True, help="directory to write (its name becomes the model id)")
    exp.add_argument("--adapter-only", action="store_true", help="copy the peft adapter instead of merging")
    exp.add_argument("--force", action="store_true", help="overwrite --out")
    exp.set_defaults(handler=export_main)


def _config(args: argparse.Namespace) -> FinetuneConfig:
    from .demo import FULL, QUICK

    return replace(QUICK if args.quick else FULL, trait=args.trait)


def _command(args: argparse.Namespace) -> str:
    parts = ["python -m playground finetune-demo"]
    if args.quick:
        parts.append("--quick")
    if args.trait != "evil":
        parts.append(f"--trait {args.trait}")
    return " ".join(parts)


def demo_main(args: argparse.Namespace) -> int:
    import json

    from .demo import FULL, QUICK, load_cached, run_demo

    config = _config(args)
    result = run_demo(
        config, model=args.model, threads=args.threads, force=args.force, log=lambda m: print(m, file=sys.stderr)
    )
    summary = {name: ev.summary() for name, ev in result.evals.items()}
    if args.report:
        from .report import write_report

        sections = []
        for tag, preset in (("full", FULL), ("quick", QUICK)):
            cfg = replace(preset, trait=args.trait)
            found = result if cfg == config else load_cached(cfg, result.model_id)
            if found is not None:
                cmd = "python -m playground finetune-demo" + (" --quick" if tag == "quick" else "")
                sections.append((tag, found, cmd + (f" --trait {args.trait}" if args.trait != "evil" else "")))
        path = write_report(sections, Path(args.report))
        print(f"wrote {path}", file=sys.stderr)
    if args.json:
        print(json.dumps({"key": result.key, "folder": str(result.folder), "timings": result.timings,
                          "summary": summary}))  # fmt: skip
    else:
        print(f"{'model':>14} {'probe':>7} {'prompt':>7} {'judge':>7} {'NLL':>6}")
        for name, s in summary.items():
            print(f"{name:>14} {s['probe']:+7.2f} {s['probe_prompt']:+7.2f} {s['judge']:+7.3f} {s['neutral_nll']:6.3f}")
        took = "cached" if result.cached else f"{result.timings.get('total_s', 0):.0f} s"
        print(f"results: {result.folder} ({took})")
        print("chat with a run: python -m playground finetune-export --run plain --out DIR"
              + (" --quick" if args.quick else ""))  # fmt: skip
    return 0


def narrow_main(args: argparse.Namespace) -> int:
    import json

    from .narrow import FULL, QUICK, cache_folder, run_narrow_broad

    config = QUICK if args.quick else FULL
    if args.seeds:
        try:
            config = replace(config, seeds=tuple(int(s) for s in args.seeds.split(",") if s.strip()))
        except ValueError:
            raise PlaygroundError(f"--seeds: expected numbers like 0,1,2, got {args.seeds!r}") from None
    result = run_narrow_broad(config, force=args.force, log=lambda m: print(m, file=sys.stderr))
    if args.report:
        from .narrow_report import write_report

        found = [("python -m playground narrow-broad" + (" --quick" if args.quick else ""), result)]
        other = QUICK if config == FULL else FULL
        cached = cache_folder(other, result["model"]) / "result.json"
        if not args.seeds and cached.is_file():
            cmd = "python -m playground narrow-broad" + (" --quick" if other == QUICK else "")
            found.append((cmd, json.loads(cached.read_text(encoding="utf-8"))))
        found.sort(key=lambda item: "--quick" in item[0])  # the full run first
        print(f"wrote {write_report(found, Path(args.report))}", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
        return 0
    summary = result["summary"]
    traits = list(summary["base"]["probes"])
    print(f"{'condition':>20} " + " ".join(f"{t[:10]:>11}" for t in traits) + f" {'judge':>8} {'NLL':>7}")
    for cond, row in summary.items():
        cells = " ".join(f"{row['probes'][t]['mean']:+11.2f}" for t in traits)
        print(f"{cond:>20} {cells} {row['judge']['mean']:+8.3f} {row['neutral_nll']['mean']:+7.3f}")
    print("(shifts from the base model; " + ("cached" if result.get("cached") else f"{result['seconds']:.0f} s") + ")")
    return 0


def export_main(args: argparse.Namespace) -> int:
    from ..backends.model_source import resolve_model
    from .demo import result_folder
    from .export import merge_adapter

    config = _config(args)
    model_id = resolve_model(args.model).model_id
    folder = result_folder(config, model_id)
    adapter = folder / "adapters" / args.run
    if not (adapter / "adapter_config.json").is_file():
        runs = sorted(p.name for p in (folder / "adapters").glob("*") if p.is_dir()) if folder.is_dir() else []
        raise PlaygroundError(
            f"no adapter '{args.run}' in {folder} (found: {', '.join(runs) or 'none'}); run `{_command(args)}` first"
        )
    out = Path(args.out).expanduser()
    if args.adapter_only:
        if out.exists() and not args.force:
            raise PlaygroundError(f"{out} exists; pass --force to overwrite it")
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(adapter, out)
        print(f"wrote {out} (peft adapter; load with peft.PeftModel.from_pretrained(base_model, '{out}'))")
        return 0
    merge_adapter(adapter, out, model=args.model, force=args.force,
                  meta={"run": args.run, "trait": config.trait, "demo_key": config.key(model_id)})  # fmt: skip
    print(f"wrote {out}; chat with it: python -m playground chat --model {out} --backend transformers")
    return 0
