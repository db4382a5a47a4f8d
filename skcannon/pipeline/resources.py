"""Locate the shared development data (``shared/`` beside the repository)."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the shared data directory explicitly.
SHARED_ENV = "SKCANNON_SHARED"


def find_shared(start: str | Path | None = None) -> Path:
    """The shared data directory: ``$SKCANNON_SHARED``, else the first ``shared/`` holding
    ``apogee/`` found in ``start`` (default: the working directory) or any of its parents."""
    env = os.environ.get(SHARED_ENV)
    if env:
        return Path(env)
    here = Path(start or Path.cwd()).resolve()
    for parent in (here, *here.parents):
        if (parent / "shared" / "apogee").is_dir():
            return parent / "shared"
    raise FileNotFoundError(f"no shared/apogee directory in {here} or its parents; set "
                            f"{SHARED_ENV} to the shared data directory")
