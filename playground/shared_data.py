"""Where the shared evaluation data lives (red-team prompts, character cards): never shipped, only read.

The data sits next to the repository (``../shared/data``) on the project's machines. A clone somewhere else
finds it through ``PLAYGROUND_SHARED_DATA`` or the machines' standard location.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STANDARD = Path("/work/shared/data")


def shared_data_dir() -> Path:
    """The shared data folder (the first that exists), or the expected sibling path for error messages."""
    candidates = []
    if os.environ.get("PLAYGROUND_SHARED_DATA"):
        candidates.append(Path(os.environ["PLAYGROUND_SHARED_DATA"]))
    candidates += [parent / "shared" / "data" for parent in REPO.parents]
    candidates.append(STANDARD)
    for c in candidates:
        if c.is_dir():
            return c
    return REPO.parent / "shared" / "data"
