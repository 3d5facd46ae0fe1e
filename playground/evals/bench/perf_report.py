"""docs/PERFORMANCE.md, perf.png and perf.json: the report of ``python -m playground bench --report``.

The contenders' medians and ratios against their goals, the baseline check and quiet-machine counts, the later
legs' numbers and the UI leg's breakdown. People's notes under ``NOTES_HEADING`` survive a regenerated report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..report import pyplot, report_dir, report_header, write_json, write_markdown

NOTES_HEADING = "## Notes (hand-written)"


def _ui_lines(result: dict[str, Any]) -> list[str]:
    leg = result.get("ui")
    if not leg:
        return []
    if "skipped" in leg:
        return ["", f"First streamed token in the browser: not measured ({leg['skipped']})."]
    lines = [
        "",
        "First streamed token in the UI (headless chromium: Enter pressed → first reply text on the page) against "
        "the backend's own first-token time (`ChatSession.stream`, no UI), same prompt, same cache state, "
        f"interleaved, median of {leg['rounds']} rounds:",
        "",
        "| | in the browser | backend alone | ratio (goal ≤ 1.5×) |",
        "|---|---|---|---|",
    ]
    for key, label in (("long", "long prompt, empty cache"), ("short", "short message, warm persona")):
        case = leg[key]
        lines.append(
            f"| {label} ({case['prompt_tokens']} prompt tokens) | {case['ui_ttft_s']} s | "
            f"{case['backend_ttft_s']} s | **{case['ratio']}** |"
        )
    short = leg["short"]
    lines += [
        "",
        f"Where the short message's time goes: key press → server starts the reply {short['request_s'] * 1000:.0f} ms, "
        f"model to its first token inside the UI server {short['server_ttft_s'] * 1000:.0f} ms (alone "
        f"{short['backend_ttft_s'] * 1000:.0f} ms), server's first token → text on the page "
        f"{short['delivery_s'] * 1000:.0f} ms.",
    ]
    return lines


def _baseline_lines(result: dict[str, Any]) -> list[str]:
    """The baseline check and the quiet-machine counts, for the report (nothing for results that predate them)."""
    base = result.get("baseline")
    if not base:
        return []
    share = f" ({base['share']}×)" if "share" in base else ""
    verdict = "ok" if base["ok"] else f"**failed, ratios not reported**: {base['reason']}"
    lines = [
        f"- Baseline check: plain llama-cpp-python made {base['bench_plain_tok_s']} tokens/s in the bench against "
        f"{base['fresh_plain_tok_s']} in a fresh process of its own before any contender was loaded{share}; "
        f"ratios are reported at ≥ {base['factor']}×: {verdict}",
    ]
    if base.get("fresh_runs_busy"):
        lines.append(f"  (careful: {base['fresh_runs_busy']} of the fresh runs were measured on a busy machine)")
    quiet = result.get("quiet")
    if quiet:
        lines.append(
            f"- Each contender in its own worker process; of {quiet['checked']} measured runs, {quiet['waited']} "
            f"waited for the other workers and the machine to go idle and {quiet['busy']} were measured while "
            f"something was still busy ({quiet['busy_if']}; the bench's own processes in "
            f"{quiet.get('busy_bench', '?')}, the machine in {quiet.get('busy_machine', '?')})"
        )
    left = [f"{name} (before {step['before']})" for step in result.get("settle", []) for name in step["terminated"]]
    if left:
        lines.append(f"- Left running by a leg and terminated before the next: {', '.join(left)}")
    return lines


def _plot(result: dict[str, Any], path: Path) -> None:
    """perf.png: the contenders' decoding speed and the conversation curve."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    names = ["plain", "playground", "hf"]
    labels = ["(a) llama.cpp\nplain", "(b) playground\nprobes+guard+steer", "(c) transformers\nhooks"]
    colors = ["grey", "C0", "C1"]
    if "plain_fa_tok_s" in result:
        names, colors = names + ["plain_fa"], colors + ["silver"]
        labels = labels + ["llama.cpp plain\nflash attn (ref.)"]
    axes[0].bar(labels, [result[f"{n}_tok_s"] for n in names], color=colors)
    axes[0].tick_params(axis="x", labelsize=7)
    axes[0].set_ylabel("tokens / s (median)")
    axes[0].set_title(f"Decoding, {result['prompt_tokens']}-token prompt")
    conv = result.get("conversation")
    if conv:
        for key, style in (("reuse", "-o"), ("no_reuse", "--x")):
            axes[1].plot(
                [c["turn"] for c in conv[key]],
                [c["seconds"] for c in conv[key]],
                style,
                label="prefix cache reused" if key == "reuse" else "prompt re-evaluated",
            )
        hf = result.get("conversation_hf")
        if hf:
            axes[1].plot([c["turn"] for c in hf], [c["seconds"] for c in hf], ":s", color="C1", label="transformers")
        axes[1].xaxis.get_major_locator().set_params(integer=True)
        twin = axes[1].twinx()
        twin.plot(
            [c["turn"] for c in conv["reuse"]], [c["prompt_tokens"] for c in conv["reuse"]], color="grey", alpha=0.4
        )
        twin.set_ylabel("prompt tokens", color="grey")
        axes[1].set_xlabel("turn")
        axes[1].set_ylabel("seconds per turn")
        axes[1].set_title("A growing conversation")
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(result: dict[str, Any], out_dir: Path, command: str) -> Path:
    """PERFORMANCE.md, perf.png and perf.json under ``out_dir``; returns the Markdown path."""
    out_dir = report_dir(out_dir)
    write_json(out_dir / "perf.json", result)
    _plot(result, out_dir / "perf.png")
    lines = [
        *report_header("Performance"),
        f"Measured by `{command}` on {result['machine']} ({result['cpus']} cores, {result['threads']} threads),",
        f"{result['rounds']} interleaved rounds, prompt {result['prompt_tokens']} tokens, {result['new_tokens']} new "
        "tokens, greedy. The machine is shared and noisy: read the ratios, not the absolute numbers.",
        "",
        "| | tokens/s | time to first token |",
        "|---|---|---|",
        f"| (a) plain llama-cpp-python, no callback | {result['plain_tok_s']} | {result['plain_ttft_s']} s |",
        f"| (b) playground: {len(result['probes'])} probes live, guard policy `{result['policy']}`, "
        f"steering {result['steered']} | {result['playground_tok_s']} | {result['playground_ttft_s']} s |",
        f"| (c) transformers + forward hooks, same probes and steering | {result['hf_tok_s']} | "
        f"{result['hf_ttft_s']} s |",
    ]
    if "plain_fa_tok_s" in result:
        lines.append(
            f"| reference: plain llama-cpp-python with flash attention (the playground generated on the "
            f"{result.get('generation_path', 'reference')} path here, chosen at start-up) | "
            f"{result['plain_fa_tok_s']} | {result['plain_fa_ttft_s']} s |"
        )
    shown = {k: "not reported" if result[k] is None else result[k] for k in ("ratio_vs_plain", "ttft_ratio")}
    speedup = "not reported" if result["speedup_vs_hf"] is None else f"{result['speedup_vs_hf']}×"
    lines += ["", *_baseline_lines(result)]
    lines += [
        f"- (b)/(a) throughput: **{shown['ratio_vs_plain']}** (goal ≥ 0.9)",
        f"- (b)/(a) time to first token: **{shown['ttft_ratio']}** (goal ≤ 1.2)",
        f"- (b)/(c) throughput: **{speedup}** (goal ≥ 5×)",
    ]
    for key, label in (
        ("extract_s", "extraction of one trait (humorous), s (goal ≤ 30)"),
        ("screen_prompt_s", "standalone prompt screening pass, s (the live guard reuses the rows it already captures)"),
        ("cold_start_s", "cold start: process start to the UI answering, s (goal ≤ 10)"),
        ("peak_rss_mb", "peak RSS of launch.py after one chat, MB (goal ≤ 1024)"),
    ):
        if key in result:
            lines.append(f"- {label}: **{result[key]}**")
    short = result.get("short_message_ttft")
    if short:
        lines.append(
            f"- time to first token of a short message in a running chat (turns {short['turns']}, median): "
            f"(b) **{short['playground_s']} s**, (c) {short['hf_s']} s, (b)/(c) **{short['ratio']}** (goal ≤ 1)"
        )
    lines += _ui_lines(result)
    lines += ["", "![performance](perf.png)", "", "Raw numbers: [perf.json](perf.json).", ""]
    # People's notes under NOTES_HEADING survive a regenerated report.
    return write_markdown(out_dir / "PERFORMANCE.md", "\n".join(lines), keep_from=NOTES_HEADING)
