"""Command line: ``python -m playground chat|validate|import|export-card|schema ...``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ..definitions.personas import DEFAULT_PERSONA, Catalog
from ..definitions.validation import validate_file
from ..errors import PlaygroundError, ValidationError
from ..evals.bench.isolation import BASELINE_EXIT, BASELINE_FACTOR
from ..guard.policy import describe_guard_event


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default=None,
        help="a .gguf file, a model directory or a Hub repo id (default: embedded SmolLM2-135M)",
    )
    p.add_argument("--backend", default="auto", choices=["auto", "llama_cpp", "transformers"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m playground", description="Persona playground: chat, validate, steer."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", help="chat with a persona (interactive, or one message with --json)")
    chat.add_argument("--persona", default=DEFAULT_PERSONA, help="persona id or path to a persona YAML file")
    _add_model_args(chat)
    chat.add_argument("--max-tokens", type=int, default=None)
    chat.add_argument("--temperature", type=float, default=None)
    chat.add_argument("--seed", type=int, default=None)
    chat.add_argument(
        "--steer",
        action="append",
        default=[],
        metavar="TRAIT=STRENGTH",
        help="steer a trait for this reply (repeatable); strength -2..2: 0 off, 1 strong but coherent, <0 suppresses",
    )
    chat.add_argument(
        "--policy", default=None, help="guardrail policy YAML (default: personas/policies/default.yaml)"
    )
    chat.add_argument("--no-guard", action="store_true", help="turn the guardrails off for this chat")
    chat.add_argument("--json", action="store_true", help="answer MESSAGE once and print one JSON object")
    chat.add_argument(
        "--best-of",
        type=int,
        default=1,
        metavar="N",
        help="sample N replies (seeds SEED..SEED+N-1) and keep the one whose probes best fit the persona's "
        "trait targets (docs/RANKING.md)",
    )
    chat.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="TRAIT=WEIGHT",
        help="with --best-of: rank by this trait (repeatable; negative = less of it); "
        "default: evil=-1, impolite=-1 and the persona's steering",
    )
    chat.add_argument("message", nargs="?", help="the message (required with --json)")

    score = sub.add_parser("score", help="probe readouts over a given reply (teacher-forced, unsteered)")
    score.add_argument("--persona", default=DEFAULT_PERSONA)
    _add_model_args(score)
    score.add_argument("--reply", required=True, help="the assistant reply to score")
    score.add_argument("--json", action="store_true", help="print one JSON object (the default output)")
    score.add_argument("message", help="the user message the reply answers")

    ext = sub.add_parser("extract", help="extract a trait vector (and its calibration) for a model")
    ext.add_argument("--trait", required=True, action="append", help="trait name or path to a trait YAML (repeatable)")
    _add_model_args(ext)
    ext.add_argument("--max-tokens", type=int, default=40, help="reply length used for extraction")
    ext.add_argument("--ship", action="store_true", help="write into models/<model>/vectors (maintainers)")
    ext.add_argument(
        "--regenerate",
        action="store_true",
        help="generate new extraction replies instead of re-reading the stored ones (their greedy text depends on "
        "the CPU's rounding; see docs/FINDINGS.md)",
    )

    scr = sub.add_parser("train-screen", help="train the prompt-screening (persona hijack) probe for a model")
    _add_model_args(scr)
    scr.add_argument("--data", default=None, help="screening data YAML (default: personas/guard/screening.yml)")
    scr.add_argument("--ship", action="store_true", help="write into models/<model>/guard (maintainers)")

    ev = sub.add_parser("eval", help="evaluation reports (written under docs/)")
    ev.add_argument(
        "what",
        choices=["traits", "guard", "guard-chat", "role-models", "ranking", "decoding", "decoding-check", "reextract"],
        help="traits: probe AUROC and steering dose-response; guard: prompt screening on red-team vs benign prompts;"
        " guard-chat: the shipped policy in real chats; role-models: role models under adversarial prompts;"
        " ranking: best-of-N probe-ranked replies; decoding: chat's flash-attention generation vs the reference path;"
        " decoding-check: teacher-forced logits of both paths on this CPU (JSON; exit 1 outside tolerance);"
        " reextract: re-extract shipped vectors from their stored replies here and compare (JSON; exit 1 if any differs"
        " beyond tolerance)",
    )
    ev.add_argument("--persona", default=None, help="role-models, ranking: the base persona (default: assistant)")
    ev.add_argument("--redteam", type=int, default=6, help="role-models: red-team prompts to sample (seeded by --seed)")
    ev.add_argument("--reply-tokens", type=int, default=48, help="role-models, ranking: tokens per reply")
    ev.add_argument("--ns", default="1,2,4,8", help="ranking: the candidate counts N to compare")
    ev.add_argument(
        "--samples", type=int, default=1, help="role-models: replies per prompt (1 = greedy; more = sampled, seeds 0..)"
    )
    ev.add_argument("--wild", type=int, default=150, help="guard: in-the-wild prompts to sample (seeded)")
    ev.add_argument(
        "--seed", type=int, default=0, help="guard, role-models: seed of the red-team subsample; ranking: base seed"
    )
    ev.add_argument("--trait", action="append", default=None, help="limit to these traits (repeatable)")
    _add_model_args(ev)
    ev.add_argument(
        "--questions", type=int, default=20, help="traits, decoding: evaluation questions per trait"
    )
    ev.add_argument("--dose-questions", type=int, default=8, help="questions per steering strength")
    ev.add_argument("--out", default="docs", help="folder for the Markdown report, plots and JSON")

    xv = sub.add_parser("export-vector", help="write a trait vector as a llama.cpp / repeng control-vector GGUF")
    xv.add_argument("trait")
    xv.add_argument("--format", choices=["gguf"], default="gguf")
    xv.add_argument("--out", default=None, help="file to write (default: TRAIT.gguf)")
    xv.add_argument("--force", action="store_true", help="replace --out if it exists")
    _add_model_args(xv)
    iv = sub.add_parser("import-vector", help="import a llama.cpp / repeng control-vector GGUF as a trait")
    iv.add_argument("file")
    iv.add_argument("--name", default=None, help="trait name (default: the file name)")
    _add_model_args(iv)

    bench = sub.add_parser(
        "bench",
        help="benchmark: probes+guard+steering vs plain llama.cpp vs transformers",
        description=f"Exit status {BASELINE_EXIT}: the bench's plain llama-cpp-python ran below {BASELINE_FACTOR}x "
        "of the same run in a fresh process of its own (a slowed baseline), so no ratios are reported.",
    )
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--rounds", type=int, default=5)
    bench.add_argument("--new-tokens", type=int, default=64)
    bench.add_argument("--prompt-tokens", type=int, default=500)
    bench.add_argument("--turns", type=int, default=20, help="turns of the conversation curve (0 = skip)")
    bench.add_argument("--no-extract", action="store_true", help="skip timing one trait extraction")
    bench.add_argument("--no-cold-start", action="store_true", help="skip the launch.py cold start / RSS run")
    bench.add_argument("--no-ui", action="store_true", help="skip the first-token-in-the-browser leg (chromium)")
    bench.add_argument("--report", default=None, metavar="DIR", help="also write DIR/PERFORMANCE.md and plots")

    val = sub.add_parser("validate", help="check persona / role-model / trait / policy YAML files")
    val.add_argument("files", nargs="+")
    _add_card_parsers(sub)
    from ..finetune.cli import add_parsers as add_finetune_parsers

    add_finetune_parsers(sub)
    return parser


def _add_card_parsers(sub) -> None:
    imp = sub.add_parser("import", help="import a character card (V1/V2/V3 JSON or PNG, text-generation-webui YAML)")
    imp.add_argument("file", help="the card: .png, .json or .yaml")
    imp.add_argument("--out", default=None, help="persona YAML to write (default: personas/<name>.yaml)")
    imp.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    imp.add_argument("--json", action="store_true", help="print the report as one JSON object")

    exp = sub.add_parser("export-card", help="export a persona as a SillyTavern V2 character card")
    exp.add_argument("persona", help="persona id or path to a persona YAML file")
    exp.add_argument("--format", choices=["json", "png"], default=None, help="default: from --out, else json")
    exp.add_argument("--out", default=None, help="file to write (default: <persona>.json or <persona>.png)")
    exp.add_argument("--force", action="store_true", help="overwrite --out if it exists")

    sch = sub.add_parser("schema", help="JSON Schema files for persona / role-model / trait / policy YAML")
    sch.add_argument("--write", action="store_true", help="(re)write schemas/*.schema.json")
    sch.add_argument("--check", action="store_true", help="exit 1 if the shipped files are out of date")


def _validate(files: Sequence[str]) -> int:
    catalog = Catalog()
    problems = 0
    for f in files:
        for issue in validate_file(f, catalog):
            print(issue)
            problems += 1
    if problems:
        print(f"{problems} problem(s) in {len(files)} file(s)", file=sys.stderr)
        return 1
    print(f"{len(files)} file(s) valid", file=sys.stderr)
    return 0


def _sampling_options(args: argparse.Namespace) -> dict:
    if args.max_tokens is not None and args.max_tokens < 1:
        raise PlaygroundError(f"--max-tokens must be at least 1, got {args.max_tokens}")
    if args.temperature is not None and not 0 <= args.temperature <= 2:
        raise PlaygroundError(f"--temperature must be between 0 and 2, got {args.temperature}")
    return {"max_tokens": args.max_tokens, "temperature": args.temperature, "seed": args.seed}


def parse_steer_args(items: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        trait, sep, value = item.partition("=")
        if not sep or not trait.strip():
            raise PlaygroundError(f"--steer {item!r}: expected TRAIT=STRENGTH, e.g. --steer humorous=0.8")
        try:
            out[trait.strip()] = float(value)
        except ValueError:
            raise PlaygroundError(f"--steer {item!r}: strength '{value}' is not a number") from None
    return out


def _policy_path(args: argparse.Namespace) -> str | None:
    if getattr(args, "no_guard", False):
        return ""  # no policy file: no rules
    return args.policy


def _chat(args: argparse.Namespace) -> int:
    from ..chat.session import Playground

    pg = Playground(args.model, backend=args.backend, policy_path=_policy_path(args))
    options = _sampling_options(args)
    options["steering"] = parse_steer_args(args.steer) or None
    ranking = {"best_of": args.best_of, "targets": args.target} if args.best_of != 1 or args.target else None
    if args.json:
        if not args.message:
            raise PlaygroundError('--json needs a MESSAGE argument, e.g. chat --json "Hello"')
        if ranking:
            from ..chat.ranking import ranked_reply

            print(json.dumps(ranked_reply(pg.session(args.persona), args.message, ranking, options).to_dict(),
                             ensure_ascii=False))  # fmt: skip
            return 0
        result = pg.chat(args.persona, args.message, **options)
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return 0
    return _interactive(pg, args.persona, options, first=args.message, ranking=ranking)


HELP = "commands: /quit, /clear (new conversation), /undo (forget last turn), /persona NAME, /help"


def _interactive(pg, persona: str, options: dict, first: str | None = None, ranking: dict | None = None) -> int:
    session = pg.session(persona)
    print(f"[{session.persona.name} on {pg.backend.model_id}; {HELP}]")
    if session.greeting:
        print(f"{session.persona.name}: {session.greeting}")
    pending = first
    while True:
        if pending is None:
            try:
                pending = input("you> ")
            except (EOFError, KeyboardInterrupt):
                print()
                return 0
        line, pending = pending.strip(), None
        if not line:
            continue
        if line in ("/quit", "/exit"):
            return 0
        if line == "/help":
            print(HELP)
            continue
        if line == "/clear":
            session.clear()
            print("[conversation cleared]")
            continue
        if line == "/undo":
            print("[last turn removed]" if session.undo() else "[nothing to undo]")
            continue
        if line.startswith("/persona"):
            try:
                session = pg.session(line.split(maxsplit=1)[1] if " " in line else persona)
                print(f"[now talking to {session.persona.name}]")
                if session.greeting:
                    print(f"{session.persona.name}: {session.greeting}")
            except PlaygroundError as exc:
                print(f"[error] {exc}")
            continue
        print(f"{session.persona.name}: ", end="", flush=True)
        if ranking:
            from ..chat.ranking import describe, ranked_reply

            try:
                ranked = ranked_reply(session, line, ranking, options)
                print(f"{ranked.result.reply}\n{describe(ranked)}")
            except PlaygroundError as exc:
                print(f"\n[error] {exc}")
            except KeyboardInterrupt:
                print("\n[stopped]")
            continue
        try:
            for event in session.stream(line, **options):
                for guard_event in event.guard:
                    print(f" [guard: {describe_guard_event(guard_event)}] ", end="", flush=True)
                if event.kind == "token":
                    print(event.text, end="", flush=True)
                elif event.kind == "reset":
                    print(f"\n[rewriting the reply]\n{session.persona.name}: ", end="", flush=True)
                elif event.kind == "replace":
                    print(f"\n{session.persona.name}: {event.text}", end="", flush=True)
                elif event.result is not None:
                    print()
                    for notice in event.result.notices:
                        print(f"[notice] {notice}")
        except KeyboardInterrupt:
            print("\n[stopped]")


def _score(args: argparse.Namespace) -> int:
    from ..chat.session import Playground

    pg = Playground(args.model, backend=args.backend)
    print(json.dumps(pg.score(args.persona, args.message, args.reply).to_dict(), ensure_ascii=False))
    return 0


def _extract(args: argparse.Namespace) -> int:
    from ..backends import load_backend
    from ..definitions.traits import load_trait
    from ..steering.extraction import extract_with_replies
    from ..steering.store import VectorStore

    traits = [load_trait(t) for t in args.trait]
    backend = load_backend(args.model, args.backend)
    store = VectorStore(backend.model_id)
    for trait in traits:
        stored = None if args.regenerate or trait.name not in store.names() else store.replies(trait.name)
        vec, replies = extract_with_replies(
            backend, trait, max_tokens=args.max_tokens, replies=stored, log=lambda m: print(m, file=sys.stderr)
        )
        path = store.save(vec, shipped=args.ship, replies=replies)
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _train_screen(args: argparse.Namespace) -> int:
    from ..backends import load_backend
    from ..guard.screening import guard_dirs, load_screening_data, train_screening

    data = load_screening_data(args.data) if args.data else load_screening_data()
    backend = load_backend(args.model, args.backend)
    probe = train_screening(backend, data=data, log=lambda m: print(m, file=sys.stderr))
    folder = guard_dirs(backend.model_id)[1 if args.ship else 0]
    for path in probe.save(folder):
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _eval_guard(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..backends import load_backend
    from ..evals.screening import evaluate_guard, write_guard_report
    from ..guard.screening import load_screening
    from ..steering.store import VectorStore

    if args.wild < 0:
        raise PlaygroundError(f"--wild must be 0 or more, got {args.wild}")
    backend = load_backend(args.model, args.backend)
    probe = load_screening(backend.model_id)
    if probe is None:
        raise PlaygroundError(f"no screening probe for {backend.model_id}; run `python -m playground train-screen`")
    store = VectorStore(backend.model_id)
    vectors = {t: store.get(t) for t in ("persona_drift", "evil") if t in store.names()}
    result = evaluate_guard(backend, probe, vectors=vectors, wild=args.wild, seed=args.seed)
    command = f"python -m playground eval guard --wild {args.wild} --seed {args.seed}"
    path = write_guard_report(result, probe, Path(args.out), command=command, backend=backend.name)
    print(f"wrote {path}", file=sys.stderr)
    return 0


def _eval_guard_chat(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from ..chat.session import Playground
    from ..evals.guard_chats import run_guard_chat_eval, write_report

    pg = Playground(args.model, backend=args.backend)
    started = time.perf_counter()
    records = run_guard_chat_eval(pg, wild=args.wild, seed=args.seed)
    command = f"python -m playground eval guard-chat --wild {args.wild} --seed {args.seed}"
    path = write_report(
        records,
        Path(args.out),
        command=command,
        seconds=time.perf_counter() - started,
        policy=pg.policies.policy.name,
        max_tokens=40,
    )
    print(f"wrote {path}", file=sys.stderr)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.what == "guard":
        return _eval_guard(args)
    if args.what == "guard-chat":
        return _eval_guard_chat(args)
    if args.what == "role-models":
        from ..evals.roles import run_cli

        return run_cli(args)
    if args.what == "ranking":
        from ..chat.ranking import run_cli

        return run_cli(args)
    if args.what == "decoding":
        from ..evals.decoding import run_cli

        return run_cli(args)
    if args.what == "decoding-check":
        from ..evals.decoding import run_check_cli

        return run_check_cli(args)
    if args.what == "reextract":
        from ..steering.agreement import run_cli as run_reextract

        return run_reextract(args)

    from ..backends import load_backend
    from ..definitions.traits import load_trait
    from ..evals.traits import evaluate_traits, write_report
    from ..steering.store import VectorStore

    backend = load_backend(args.model, args.backend)
    vectors = VectorStore(backend.model_id).all()
    names = args.trait or sorted(vectors)
    missing = [n for n in names if n not in vectors]
    if missing:
        raise PlaygroundError(
            f"no vector for {', '.join(missing)} on {backend.model_id}; run `python -m playground extract --trait NAME`"
        )
    results = evaluate_traits(
        backend,
        vectors,
        [load_trait(n) for n in names],
        n_questions=args.questions,
        dose_questions=args.dose_questions,
        log=lambda m: print(m, file=sys.stderr),
    )
    command = "python -m playground eval traits" + "".join(f" --trait {n}" for n in (args.trait or []))
    path = write_report(results, Path(args.out), command=command, model_id=backend.model_id, backend=backend.name)
    print(f"wrote {path}", file=sys.stderr)
    return 0


def _import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..definitions.cards import import_card_file

    result = import_card_file(args.file, args.out, force=args.force)
    if args.json:
        print(json.dumps(result.report.to_dict(), ensure_ascii=False))
    else:
        print(result.report)
        target = Path(result.report.written_to)
        found = Catalog().persona_files().get(result.persona_id)
        in_catalog = found is not None and found.resolve() == target.resolve()
        print(f"chat with it: python -m playground chat --persona {result.persona_id if in_catalog else target}")
    return 0


def _export_card(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..definitions.cards import card_json, card_png
    from ..files import write_atomic

    persona = Catalog().persona(args.persona)
    fmt = args.format or ("png" if args.out and args.out.lower().endswith(".png") else "json")
    out = Path(args.out or f"{persona.id}.{fmt}")
    data = card_png(persona) if fmt == "png" else card_json(persona)
    write_atomic(out, data, overwrite=args.force)
    print(f"wrote {out} (chara_card_v2, {fmt})")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from ..definitions import json_schemas

    if args.write:
        for path in json_schemas.write():
            print(f"wrote {path}")
        return 0
    stale = json_schemas.outdated()
    if args.check:
        for name in stale:
            print(f"{json_schemas.SCHEMA_DIR / name}: out of date; run python -m playground schema --write")
        return 1 if stale else 0
    print(json_schemas.generate()[json_schemas.file_name("persona")], end="")
    return 0


def _export_vector(args: argparse.Namespace) -> int:
    from ..backends.model_source import resolve_model
    from ..steering.exchange import export_vector
    from ..steering.store import VectorStore

    model_id = resolve_model(args.model).model_id
    vec = VectorStore(model_id).get(args.trait)
    path = export_vector(vec, args.out or f"{args.trait}.gguf", force=args.force)
    print(f"wrote {path} ({len(vec.directions)} layers; use with llama.cpp --control-vector)", file=sys.stderr)
    return 0


def _import_vector(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..backends import load_backend
    from ..steering.exchange import import_vector
    from ..steering.store import VectorStore

    backend = load_backend(args.model, args.backend)
    vec = import_vector(backend, args.file, args.name or Path(args.file).stem)
    path = VectorStore(backend.model_id).save(vec)
    print(
        f"wrote {path}: trait '{vec.trait}', probe layer {vec.probe_layer}, steer layer {vec.steer_layer}; "
        f"try: python -m playground chat --steer {vec.trait}=1",
        file=sys.stderr,
    )
    return 0


def _bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..evals.bench.run import run_bench, write_report

    result = run_bench(
        rounds=args.rounds,
        new_tokens=args.new_tokens,
        prompt_tokens=args.prompt_tokens,
        turns=args.turns,
        extract=not args.no_extract,
        cold=not args.no_cold_start,
        ui=not args.no_ui,
        log=lambda m: print(m, file=sys.stderr),
    )
    if args.report:
        path = write_report(result, Path(args.report), "python -m playground bench --report " + args.report)
        print(f"wrote {path}", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    else:
        for key in ("fresh_plain_tok_s", "plain_tok_s", "playground_tok_s", "hf_tok_s", "ratio_vs_plain",
                    "speedup_vs_hf", "ttft_ratio", "ui_ttft_ratio", "ui_short_ttft_ratio", "extract_s",
                    "peak_rss_mb", "cold_start_s"):
            if key in result:
                print(f"{key:18} {result[key]}")
    baseline = result.get("baseline", {})
    if not baseline.get("ok", True):
        print(f"bench: no ratios reported: {baseline['reason']}", file=sys.stderr)
        return BASELINE_EXIT
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "validate":
            return _validate(args.files)
        if args.command == "chat":
            return _chat(args)
        if args.command == "score":
            return _score(args)
        if args.command == "extract":
            return _extract(args)
        if args.command == "import":
            return _import(args)
        if args.command == "export-card":
            return _export_card(args)
        if args.command == "schema":
            return _schema(args)
        if args.command == "eval":
            return _eval(args)
        if args.command == "bench":
            return _bench(args)
        if args.command == "export-vector":
            return _export_vector(args)
        if args.command == "import-vector":
            return _import_vector(args)
        if args.command == "train-screen":
            return _train_screen(args)
        if args.command in ("finetune-demo", "finetune-export"):
            from ..finetune import cli as finetune_cli

            return (finetune_cli.demo_main if args.command == "finetune-demo" else finetune_cli.export_main)(args)
    except ValidationError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return 1
    except PlaygroundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
