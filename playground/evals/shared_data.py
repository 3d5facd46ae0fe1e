"""Where the shared evaluation data lives (red-team prompts, character cards): never shipped, only read.

The data sits in a ``shared/data`` folder beside the repository or beside one of its parent folders (on the
project's machines: ``../shared/data``). A clone anywhere else points ``PLAYGROUND_SHARED_DATA`` at it.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..paths import REPO_ROOT as REPO

ENV_VAR = "PLAYGROUND_SHARED_DATA"


def shared_data_dir() -> Path:
    """The shared data folder: ``$PLAYGROUND_SHARED_DATA`` if it exists, else the first ``shared/data`` beside
    the repository or one of its parents. When none exists, the path that was expected (``$PLAYGROUND_SHARED_DATA``
    if set, else ``../shared/data``) so that error messages name it; tell the user to set the variable."""
    env = os.environ.get(ENV_VAR)
    candidates = [Path(env)] if env else []
    candidates += [parent / "shared" / "data" for parent in REPO.parents]
    for c in candidates:
        if c.is_dir():
            return c
    return Path(env) if env else REPO.parent / "shared" / "data"
