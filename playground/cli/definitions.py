"""Definition files: ``validate``, ``import`` (character cards), ``export-card`` and ``schema``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..definitions.personas import Catalog
from ..definitions.validation import validate_file
from .common import Subcommands


def register(sub: Subcommands) -> None:
    val = sub.add_parser("validate", help="check persona / role-model / trait / policy YAML files")
    val.add_argument("files", nargs="+")
    val.set_defaults(handler=validate_command)

    imp = sub.add_parser("import", help="import a character card (V1/V2/V3 JSON or PNG, text-generation-webui YAML)")
    imp.add_argument("file", help="the card: .png, .json or .yaml")
    imp.add_argument("--out", default=None, help="persona YAML to write (default: personas/<name>.yaml)")
    imp.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    imp.add_argument("--json", action="store_true", help="print the report as one JSON object")
    imp.set_defaults(handler=import_command)

    exp = sub.add_parser("export-card", help="export a persona as a SillyTavern V2 character card")
    exp.add_argument("persona", help="persona id or path to a persona YAML file")
    exp.add_argument("--format", choices=["json", "png"], default=None, help="default: from --out, else json")
    exp.add_argument("--out", default=None, help="file to write (default: <persona>.json or <persona>.png)")
    exp.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    exp.set_defaults(handler=export_card_command)

    sch = sub.add_parser("schema", help="JSON Schema files for persona / role-model / trait / policy YAML")
    sch.add_argument("--write", action="store_true", help="(re)write schemas/*.schema.json")
    sch.add_argument("--check", action="store_true", help="exit 1 if the shipped files are out of date")
    sch.set_defaults(handler=schema_command)


def validate_command(args: argparse.Namespace) -> int:
    catalog = Catalog()
    problems = 0
    for f in args.files:
        for issue in validate_file(f, catalog):
            print(issue)
            problems += 1
    if problems:
        print(f"{problems} problem(s) in {len(args.files)} file(s)", file=sys.stderr)
        return 1
    print(f"{len(args.files)} file(s) valid", file=sys.stderr)
    return 0


def import_command(args: argparse.Namespace) -> int:
    from ..definitions.cards import import_card_file

    result = import_card_file(args.file, args.out, force=args.force)
    if args.json:
        print(json.dumps(result.report.to_dict(), ensure_ascii=False))
        return 0
    print(result.report)
    target = Path(result.report.written_to)
    found = Catalog().persona_files().get(result.persona_id)
    in_catalog = found is not None and found.resolve() == target.resolve()
    print(f"chat with it: python -m playground chat --persona {result.persona_id if in_catalog else target}")
    return 0


def export_card_command(args: argparse.Namespace) -> int:
    from ..definitions.cards import card_json, card_png
    from ..files import write_atomic

    persona = Catalog().persona(args.persona)
    fmt = args.format or ("png" if args.out and args.out.lower().endswith(".png") else "json")
    out = Path(args.out or f"{persona.id}.{fmt}")
    data = card_png(persona) if fmt == "png" else card_json(persona)
    write_atomic(out, data, overwrite=args.force)
    print(f"wrote {out} (chara_card_v2, {fmt})")
    return 0


def schema_command(args: argparse.Namespace) -> int:
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
