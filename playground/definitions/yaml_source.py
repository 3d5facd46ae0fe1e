"""Safe YAML loading that remembers where every value came from.

Only plain data is built (``yaml.SafeLoader`` semantics: no object construction).
On top of that we reject what safe_load silently accepts but a definition file
should never contain: duplicate keys, alias bombs, huge files and invalid UTF-8.
Every problem is an :class:`~playground.errors.Issue` with file, line and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import Issue, ValidationError

MAX_FILE_BYTES = 256 * 1024
MAX_EXPANDED_NODES = 20_000

PathKey = tuple[str | int, ...]


@dataclass
class YamlDocument:
    """Parsed data plus a map from a value's path to its (line, column), both 1-based."""

    file: str
    data: Any
    positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    problems: list[Issue] = field(default_factory=list)  # duplicate / merge keys kept by a lenient parse

    def where(self, path: PathKey, *, key: bool = False) -> tuple[int, int]:
        """Best-known position for ``path``: the exact node, else its nearest parent."""
        table = self.key_positions if key else self.positions
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.positions:
                return self.positions[probe]
            probe = probe[:-1]
        return self.positions.get((), (1, 1))

    def issue(self, path: PathKey, message: str, *, key: bool = False) -> Issue:
        line, col = self.where(path, key=key)
        return Issue(self.file, line, col, message)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _offset_to_line_col(raw: bytes, offset: int) -> tuple[int, int]:
    line = raw.count(b"\n", 0, offset) + 1
    last_nl = raw.rfind(b"\n", 0, offset)
    return line, offset - last_nl


def _decode(raw: bytes, name: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _offset_to_line_col(raw, exc.start)
        raise ValidationError(
            [Issue(name, line, col, f"invalid UTF-8 byte 0x{raw[exc.start]:02x}; save the file as UTF-8")]
        ) from None
    return text.removeprefix("\ufeff")


class _Walker:
    """Walks the composed node graph: records positions, finds duplicate keys, bounds expansion."""

    def __init__(self, name: str):
        self.name = name
        self.issues: list[Issue] = []
        self.positions: dict[PathKey, tuple[int, int]] = {}
        self.key_positions: dict[PathKey, tuple[int, int]] = {}
        self.visited = 0

    def walk(self, node: yaml.Node, path: PathKey) -> None:
        self.visited += 1
        if self.visited > MAX_EXPANDED_NODES:
            line, col = _mark(node)
            raise ValidationError(
                [
                    Issue(
                        self.name,
                        line,
                        col,
                        f"document expands to more than {MAX_EXPANDED_NODES} values "
                        "(too many aliases?); write the values out instead of using anchors",
                    )
                ]
            )
        self.positions.setdefault(path, _mark(node))
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, tuple[int, int]] = {}
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
                line, col = _mark(key_node)
                if key == "<<":
                    self.issues.append(Issue(self.name, line, col, "merge keys ('<<') are not supported"))
                    continue
                if key in seen:
                    first = seen[key]
                    self.issues.append(
                        Issue(self.name, line, col, f"duplicate key '{key}' (first defined at line {first[0]})")
                    )
                    continue
                seen[key] = (line, col)
                self.key_positions.setdefault(path + (key,), (line, col))
                self.walk(value_node, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.walk(item, path + (index,))


def parse_yaml(text: str, name: str, *, lenient: bool = False) -> YamlDocument:
    """Parse one YAML document from ``text``; ``name`` is used in error locations.

    Duplicate and merge keys raise, unless ``lenient``: then the document is built anyway (a duplicate's last
    value wins) and they are listed in ``problems``, so a validator can report them with everything else."""
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # control characters, found while the reader is set up
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise ValidationError(
            [Issue(name, line, col, f"character {exc.character:#06x} is not allowed in YAML; remove it")]
        ) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return YamlDocument(name, None, {(): (1, 1)})
        walker = _Walker(name)
        walker.walk(node, ())
        if walker.issues and not lenient:
            raise ValidationError(walker.issues)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or "invalid YAML"
        if "could not determine a constructor" in problem:
            problem = "tags such as '!!python/...' are not allowed; definition files hold plain data only"
        elif exc.context:
            ctx = exc.context
            cm = exc.context_mark
            if cm is not None and mark is not None and (cm.line, cm.column) != (mark.line, mark.column):
                ctx = f"{ctx} that starts at line {cm.line + 1}, column {cm.column + 1}"
            problem = f"{problem} ({ctx})"
        message = f"YAML syntax error: {problem}; nothing else in the file was checked, fix this first"
        raise ValidationError([Issue(name, line, col, message)]) from None
    except yaml.YAMLError as exc:
        raise ValidationError([Issue(name, 1, 1, f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()
    return YamlDocument(name, data, walker.positions, walker.key_positions, list(walker.issues))


def load_yaml_bytes(raw: bytes, name: str, *, max_bytes: int = MAX_FILE_BYTES, lenient: bool = False) -> YamlDocument:
    if len(raw) > max_bytes:
        raise ValidationError([Issue(name, 1, 1, f"file is {len(raw):,} bytes; the limit is {max_bytes:,} bytes")])
    return parse_yaml(_decode(raw, name), name, lenient=lenient)


def load_yaml_file(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES, lenient: bool = False) -> YamlDocument:
    """Read and parse a YAML file without ever reading more than ``max_bytes`` + 1 bytes."""
    p = Path(path)
    name = str(path)
    try:
        with p.open("rb") as fh:
            raw = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise ValidationError([Issue(name, 1, 1, "file not found")]) from None
    except IsADirectoryError:
        raise ValidationError([Issue(name, 1, 1, "is a directory, expected a YAML file")]) from None
    except OSError as exc:
        raise ValidationError([Issue(name, 1, 1, f"cannot read file: {exc.strerror}")]) from None
    if len(raw) > max_bytes:
        size = p.stat().st_size
        raise ValidationError([Issue(name, 1, 1, f"file is {size:,} bytes; the limit is {max_bytes:,} bytes")])
    return parse_yaml(_decode(raw, name), name, lenient=lenient)
