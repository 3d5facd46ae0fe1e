"""The stateless HTTP API behind ``api_name="chat"``: one message to one persona, answered with the same object
as ``python -m playground chat --json``. Over the network a persona is named by its catalog id only (never a
path to a file), and steering comes as a JSON object that is checked before anything is generated."""

from __future__ import annotations

from typing import Any

from ..chat.session import Playground
from ..definitions.schema import did_you_mean
from ..errors import NotFoundError, PlaygroundError
from ..steering.request import parse_steer_json


def catalog_persona(pg: Playground, name: str) -> str:
    """A persona id from the catalog. Over the network only ids are accepted, never paths to files."""
    name = str(name).strip()
    files = pg.catalog.persona_files()
    if name in files:
        return name
    if "/" in name or "\\" in name or name.endswith((".yaml", ".yml")):
        raise PlaygroundError(f"'{name}': give a persona id from the catalog (a file name without .yaml), not a path")
    raise NotFoundError(
        f"no persona named '{name}'{did_you_mean(name, list(files))} (available: {', '.join(sorted(files))})"
    )


def api_chat(
    pg: Playground,
    message: str,
    persona: str,
    steer_json: str = "",
    *,
    temperature: float | None = None,
    seed: int | None = None,
    max_tokens: int | None = None,
) -> dict[str, Any]:
    """Stateless chat for the HTTP API: returns the same object as ``chat --json``."""
    steering = parse_steer_json(steer_json)
    session = pg.session(catalog_persona(pg, persona or "assistant"))
    options = {"temperature": temperature, "seed": seed, "max_tokens": max_tokens}
    options = {k: v for k, v in options.items() if v is not None}
    return session.send(message, steering=steering or None, **options).to_dict()
