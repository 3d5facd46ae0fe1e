"""Check the package layout: import cycles (module- and function-level imports), long functions, long modules.

Usage: python scripts/layout_check.py [--tree]   (exit 1 when a rule is broken)
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "playground"
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 400


@dataclass
class Layout:
    modules: dict[str, Path] = field(default_factory=dict)
    imports: dict[str, set[str]] = field(default_factory=dict)
    functions: list[tuple[int, str]] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(module: str, is_package: bool, tree: ast.AST, known: set[str]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node)
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module and name.startswith(PACKAGE):
                found.add(name)
    return found


def _type_checking_only(tree: ast.Module) -> None:
    """Drop `if TYPE_CHECKING:` blocks: they never run, so they cannot form a cycle."""
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            node.body = [  # type: ignore[attr-defined]
                child
                for child in body
                if not (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
            ]


def scan() -> Layout:
    layout = Layout()
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        layout.modules[module_name(path)] = path
    known = set(layout.modules)
    for name, path in list(layout.modules.items()):
        try:
            source = path.read_text()
        except FileNotFoundError:  # moved away while scanning (someone is editing the tree)
            del layout.modules[name]
            continue
        tree = ast.parse(source)
        layout.lines[name] = len(source.splitlines())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                layout.functions.append((length, f"{name}.{node.name} ({path.relative_to(ROOT)}:{node.lineno})"))
        _type_checking_only(tree)
        targets = _targets(name, path.name == "__init__.py", tree, known)
        # A package's own __init__ runs when a submodule is imported: that edge is not a cycle.
        layout.imports[name] = {t for t in targets if not name.startswith(t + ".")}
    return layout


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def tree_lines(layout: Layout) -> list[str]:
    totals: dict[str, tuple[int, int]] = {}
    for name, count in layout.lines.items():
        path = layout.modules[name]
        folder = str(path.parent.relative_to(ROOT)) + "/"
        files, lines = totals.get(folder, (0, 0))
        totals[folder] = (files + 1, lines + count)
    return [f"{folder:<28} {files:>3} modules {lines:>6} lines" for folder, (files, lines) in sorted(totals.items())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="store_true", help="print one line per (sub)package with line counts")
    parser.add_argument("--top", type=int, default=5, help="how many of the longest functions/modules to list")
    args = parser.parse_args(argv)
    layout = scan()
    problems: list[str] = []
    for component in cycles(layout.imports):
        problems.append("import cycle: " + " <-> ".join(component))
    long_functions = sorted(layout.functions, reverse=True)
    for length, where in long_functions:
        if length > MAX_FUNCTION_LINES:
            problems.append(f"function over {MAX_FUNCTION_LINES} lines: {where}: {length}")
    for name, count in sorted(layout.lines.items(), key=lambda item: -item[1]):
        if count > MAX_MODULE_LINES:
            problems.append(f"module over {MAX_MODULE_LINES} lines: {layout.modules[name].relative_to(ROOT)}: {count}")
    if args.tree:
        print("\n".join(tree_lines(layout)))
    print(f"{len(layout.modules)} modules, {sum(layout.lines.values())} lines, "
          f"{sum(len(v) for v in layout.imports.values())} internal imports")
    print("longest functions: " + "; ".join(f"{w.split(' (')[0]} {n}" for n, w in long_functions[: args.top]))
    longest = sorted(layout.lines.items(), key=lambda item: -item[1])[: args.top]
    print("longest modules: " + "; ".join(f"{layout.modules[n].relative_to(ROOT)} {c}" for n, c in longest))
    for problem in problems:
        print(problem)
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
