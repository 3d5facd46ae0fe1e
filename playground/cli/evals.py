"""Measurements: ``eval <what>`` (reports written under docs/) and ``bench`` (what probes, guard and steering cost)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..errors import PlaygroundError
from ..evals.bench.isolation import BASELINE_EXIT, BASELINE_FACTOR
from .common import Handler, Subcommands, add_model_args, log_to_stderr

BENCH_SUMMARY = ("fresh_plain_tok_s", "plain_tok_s", "playground_tok_s", "hf_tok_s", "ratio_vs_plain",
                 "speedup_vs_hf", "ttft_ratio", "ui_ttft_ratio", "ui_short_ttft_ratio", "extract_s",
                 "peak_rss_mb", "cold_start_s")  # fmt: skip


EVAL_KINDS = {
    "traits": "probe AUROC and steering dose-response",
    "guard": "prompt screening on red-team vs benign prompts",
    "guard-chat": "the shipped policy in real chats",
    "guard-reply": "replies with and without the reply-phase guard (jailbreaks, steering +1, harmless questions)",
    "role-models": "role models under adversarial prompts",
    "ranking": "best-of-N probe-ranked replies",
    "emotions": "joyful and distressed probes after a fix that worked vs one that did not (held-out situations)",
    "decoding": "chat's flash-attention generation vs the reference path",
    "decoding-check": "teacher-forced logits of both paths on this CPU (JSON; exit 1 outside tolerance)",
    "reextract": "re-extract shipped vectors from their stored replies here and compare (JSON; exit 1 if any differs"
    " beyond tolerance)",
}


def register(sub: Subcommands) -> None:
    _register_eval(sub)
    _register_bench(sub)


def _register_eval(sub: Subcommands) -> None:
    ev = sub.add_parser("eval", help="evaluation reports (written under docs/)")
    ev.add_argument(
        "what",
        choices=list(EVAL_KINDS),
        help="; ".join(f"{k}: {v}" for k, v in EVAL_KINDS.items()),
    )
    ev.add_argument("--persona", default=None, help="role-models, ranking: the base persona (default: assistant)")
    ev.add_argument("--redteam", type=int, default=6, help="role-models: red-team prompts to sample (seeded by --seed)")
    ev.add_argument(
        "--reply-tokens", type=int, default=48, help="role-models, ranking, guard-reply, emotions: tokens per reply"
    )
    ev.add_argument("--ns", default="1,2,4,8", help="ranking: the candidate counts N to compare")
    ev.add_argument(
        "--samples", type=int, default=1, help="role-models: replies per prompt (1 = greedy; more = sampled, seeds 0..)"
    )
    ev.add_argument(
        "--wild",
        type=int,
        default=None,
        help="guard: in-the-wild prompts to sample, seeded (default all 666); guard-chat: the same (default 150);"
        " guard-reply: the same (default 150)",
    )
    ev.add_argument(
        "--before-screen",
        default=None,
        help="guard: also score an earlier screening probe (its folder) on the same activations, as 'screen_before'",
    )
    ev.add_argument(
        "--seed", type=int, default=0, help="guard, role-models: seed of the red-team subsample; ranking: base seed"
    )
    ev.add_argument("--trait", action="append", default=None, help="limit to these traits (repeatable)")
    add_model_args(ev)
    ev.add_argument(
        "--questions",
        type=int,
        default=None,
        help="traits: held-out questions per trait (default 40, all); decoding: evaluation questions per trait (20)",
    )
    ev.add_argument(
        "--dose-questions", type=int, default=None, help="traits: held-out questions per steering strength (default 30)"
    )
    ev.add_argument(
        "--vectors", default=None, help="traits: evaluate the vectors in this folder instead of the store's"
    )
    ev.add_argument(
        "--methods",
        default=None,
        help="traits: also fit and compare these probe methods (comma list of "
        "mean_diff,vs_neutral,one_vs_rest,orth_drift,lda; 'all' for every one)",
    )
    ev.add_argument("--before", default=None, help="traits: an earlier traits-eval.json to show as 'before'")
    ev.add_argument(
        "--heldout",
        default=None,
        help="traits, guard-reply: the held-out set to evaluate on (default personas/heldout/traits_eval_v2.yml)",
    )
    ev.add_argument("--no-steering", action="store_true", help="traits: skip the steering part")
    ev.add_argument(
        "--strengths", default="0.5,1,1.5,2", help="traits: steering strengths to count degenerate replies at"
    )
    ev.add_argument(
        "--record",
        action="store_true",
        help="traits: write the held-out AUROC and specificity into the evaluated vectors (what the UI shows)",
    )
    ev.add_argument("--out", default="docs", help="folder for the Markdown report, plots and JSON")
    ev.set_defaults(handler=eval_command)


def _register_bench(sub: Subcommands) -> None:
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
    bench.add_argument(
        "--cpu-load",
        action="store_true",
        help="only this: reply speed while another process keeps one core busy, llama.cpp threads fixed vs "
        "fitted to the free CPUs (fresh processes; --report writes DIR/CPU_LOAD.md)",
    )
    bench.add_argument(
        "--gguf-load",
        default=None,
        metavar="GGUF",
        help="only this: load times of a GGUF on the transformers backend, read directly vs converted once vs "
        "the converted folder (fresh processes; each leg takes up to a minute: use --rounds 1 or 2)",
    )
    bench.add_argument(
        "--api",
        action="store_true",
        help="only this: time to first token through the OpenAI-compatible API vs the library (fresh processes)",
    )
    bench.add_argument(
        "--load",
        action="store_true",
        help="only this: many chats at once (mixed personas and steering) on llama.cpp and on the vLLM engine, "
        "aggregate tok/s and time to first token per client count (a fresh process per engine)",
    )
    bench.add_argument("--clients", default="1,4,16,32", help="client counts of --load (default 1,4,16,32)")
    bench.add_argument("--model", default=None, help="--load only: the model both engines serve (default: embedded)")
    bench.set_defaults(handler=bench_command)


def eval_command(args: argparse.Namespace) -> int:
    return _eval_handler(args.what)(args)


def _eval_handler(what: str) -> Handler:
    """The function behind ``eval WHAT``; the evaluation modules are imported only when asked for."""
    if what == "role-models":
        from ..evals.roles import run_cli as role_models

        return role_models
    if what == "ranking":
        from ..evals.ranking import run_cli as ranking

        return ranking
    if what in ("decoding", "decoding-check"):
        from ..evals.decoding import run_check_cli, run_cli

        return run_cli if what == "decoding" else run_check_cli
    if what == "emotions":
        from ..evals.emotions_report import run_cli as emotions

        return emotions
    if what == "guard-reply":
        from ..evals.reply_guard_report import run_cli as guard_reply

        return guard_reply
    if what == "reextract":
        from ..steering.agreement import run_cli as reextract

        return reextract
    return {"guard": _eval_guard, "guard-chat": _eval_guard_chat, "traits": _eval_traits}[what]


def _eval_guard(args: argparse.Namespace) -> int:
    from ..backends import load_backend
    from ..evals.guard_leakage import guard_leakage
    from ..evals.screening import evaluate_guard
    from ..evals.screening_report import write_guard_report
    from ..guard.screening import load_screening
    from ..steering.store import VectorStore

    if args.wild is not None and args.wild < 0:
        raise PlaygroundError(f"--wild must be 0 or more, got {args.wild}")
    backend = load_backend(args.model, args.backend)
    probe = load_screening(backend.model_id)
    if probe is None:
        raise PlaygroundError(f"no screening probe for {backend.model_id}; run `python -m playground train-screen`")
    before = _screen_from(args.before_screen) if args.before_screen else None
    store = VectorStore(backend.model_id)
    vectors = {t: store.get(t) for t in ("persona_drift", "evil") if t in store.names()}
    result = evaluate_guard(backend, probe, before=before, vectors=vectors, wild=args.wild, seed=args.seed)
    command = "python -m playground eval guard" + (
        f" --wild {args.wild} --seed {args.seed}" if args.wild is not None else ""
    )
    command += f" --before-screen {args.before_screen}" if args.before_screen else ""
    path = write_guard_report(
        result, probe, Path(args.out), command=command, backend=backend.name, leakage=guard_leakage()
    )
    print(f"wrote {path}", file=sys.stderr)
    return 0


def _eval_guard_chat(args: argparse.Namespace) -> int:
    from ..chat.session import Playground
    from ..evals.guard_chats import run_guard_chat_eval, write_report

    pg = Playground(args.model, backend=args.backend)
    started = time.perf_counter()
    wild = 150 if args.wild is None else args.wild
    records = run_guard_chat_eval(pg, wild=wild, seed=args.seed)
    command = f"python -m playground eval guard-chat --wild {wild} --seed {args.seed}"
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


def _eval_traits(args: argparse.Namespace) -> int:
    from ..backends import load_backend
    from ..evals.traits_report import load_result, write_traits_report
    from ..evals.traits_run import record_reliability, run_traits_eval
    from ..steering.store import VectorStore

    backend = load_backend(args.model, args.backend)
    store = VectorStore(backend.model_id, [Path(args.vectors)] if args.vectors else None)
    vectors = store.all()
    names = args.trait or sorted(vectors)
    missing = [n for n in names if n not in vectors]
    if missing:
        raise PlaygroundError(
            f"no vector for {', '.join(missing)} on {backend.model_id}; run `python -m playground extract --trait NAME`"
        )
    vectors = {n: vectors[n] for n in names}
    result = run_traits_eval(
        backend,
        vectors,
        n_questions=args.questions or 40,
        steer_questions=args.dose_questions or 30,
        alternatives=_alternatives(backend, store, args.methods),
        strengths=_strengths(args.strengths),
        steering=not args.no_steering,
        heldout=_heldout_file(args.heldout),
        log=log_to_stderr,
    )
    given = (("methods", args.methods), ("before", args.before), ("vectors", args.vectors), ("heldout", args.heldout))
    if args.strengths != "0.5,1,1.5,2":
        given += (("strengths", args.strengths),)
    command = "python -m playground eval traits" + " ".join([""] + [f"--{k} {v}" for k, v in given if v])
    command += " --record" if args.record else ""
    before = load_result(Path(args.before)) if args.before else None
    path = write_traits_report(result, Path(args.out), command=command, before=before)
    print(f"wrote {path}", file=sys.stderr)
    if args.record:
        written = record_reliability(store, result, shipped=bool(args.vectors) or _is_shipped(store))
        print(f"recorded held-out reliability in {len(written)} vectors", file=sys.stderr)
    return 0


def _screen_from(folder: str):
    from ..guard.screening import ScreeningProbe

    if not Path(folder).is_dir():
        raise PlaygroundError(f"--before-screen: no such folder: {folder}")
    return ScreeningProbe.load(folder)


def _heldout_file(given: str | None) -> Path:
    from ..evals.heldout import HELDOUT_FILE

    path = Path(given) if given else HELDOUT_FILE
    if not path.is_file():
        raise PlaygroundError(f"--heldout: no such file: {path}")
    return path


def _strengths(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise PlaygroundError(f"--strengths: expected numbers separated by commas, got '{text}'") from None
    if not values:
        raise PlaygroundError("--strengths: give at least one strength")
    return values


def _is_shipped(store: object) -> bool:
    from ..steering.store import user_cache_dir

    files = store.files()
    return all(user_cache_dir() not in p.parents for p in files.values())


def _alternatives(backend: object, store: object, methods: str | None) -> dict:
    """Probe sets fit by other methods on the same training data, for the comparison table."""
    if not methods:
        return {}
    from ..steering.probe_fit import METHODS, fit_probes
    from ..steering.probe_training import gather, probes_from

    wanted = list(METHODS) if methods == "all" else [m.strip() for m in methods.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in METHODS]
    if unknown:
        raise PlaygroundError(f"--methods: unknown method {', '.join(unknown)} (known: {', '.join(METHODS)})")
    with backend.reference_decoding():  # type: ignore[attr-defined]
        training = gather(backend, store, store.names())  # type: ignore[arg-type, attr-defined]
    return {m: probes_from(training, fit_probes(training.data, m)) for m in wanted}


def bench_command(args: argparse.Namespace) -> int:
    from ..evals.bench.perf_report import write_report
    from ..evals.bench.run import run_bench

    if args.cpu_load:
        return _cpu_load_bench(args)
    if args.api:
        from ..evals.bench import api_ttft

        found = api_ttft.run(rounds=args.rounds, log=log_to_stderr)
        print(json.dumps(found) if args.json else json.dumps(found["api_ttft"], indent=1))
        return 0
    if args.load:
        return _load_bench(args)
    if args.gguf_load:
        from ..evals.bench import gguf_load

        found = gguf_load.run(Path(args.gguf_load), rounds=args.rounds, log=log_to_stderr)
        print(json.dumps(found) if args.json else json.dumps(found["gguf_load"], indent=1))
        return 0
    result = run_bench(
        rounds=args.rounds,
        new_tokens=args.new_tokens,
        prompt_tokens=args.prompt_tokens,
        turns=args.turns,
        extract=not args.no_extract,
        cold=not args.no_cold_start,
        ui=not args.no_ui,
        log=log_to_stderr,
    )
    if args.report:
        path = write_report(result, Path(args.report), "python -m playground bench --report " + args.report)
        print(f"wrote {path}", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    else:
        for key in BENCH_SUMMARY:
            if key in result:
                print(f"{key:18} {result[key]}")
    baseline = result.get("baseline", {})
    if not baseline.get("ok", True):
        print(f"bench: no ratios reported: {baseline['reason']}", file=sys.stderr)
        return BASELINE_EXIT
    return 0


def _load_bench(args: argparse.Namespace) -> int:
    from ..evals.bench import load

    try:
        clients = [int(c) for c in args.clients.split(",") if c.strip()]
    except ValueError:
        raise PlaygroundError(f"--clients: expected counts like 1,4,16,32, got {args.clients!r}") from None
    if not clients or min(clients) < 1:
        raise PlaygroundError(f"--clients: every count must be at least 1, got {args.clients!r}")
    found = load.run(clients, max_tokens=args.new_tokens, log=log_to_stderr, model=args.model)
    if args.report:
        from ..evals.bench.load_report import write_report

        print(f"wrote {write_report(found, args.report)}", file=sys.stderr)
    print(json.dumps(found) if args.json else json.dumps(found, indent=1))
    return 0


def _cpu_load_bench(args: argparse.Namespace) -> int:
    from ..evals.bench import cpu_load

    result = cpu_load.run(rounds=args.rounds, new_tokens=args.new_tokens, log=log_to_stderr)
    if args.report:
        print(f"wrote {cpu_load.write_report(result, Path(args.report))}", file=sys.stderr)
    print(json.dumps(result) if args.json else json.dumps(result["cpu_load"]["ratios"], indent=1))
    return 0
