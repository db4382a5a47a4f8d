"""Where APOGEE files live: archive URLs and the local data (cache) directory."""

from __future__ import annotations

import os
from pathlib import Path

from skcannon.apogee.constants import (
    ALLSTAR_PATH,
    APSTAR_PATH_TEMPLATE,
    ARCHIVE_URL_ENV,
    DATA_DIR_ENV,
    DEFAULT_ARCHIVE_URL,
)


def archive_url(url: str | None = None) -> str:
    """Archive base URL: ``url`` if given, else ``$SKCANNON_ARCHIVE_URL``, else the SDSS SAS."""
    chosen = url or os.environ.get(ARCHIVE_URL_ENV) or DEFAULT_ARCHIVE_URL
    return chosen.rstrip("/")


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """Data directory: ``path`` if given, else ``$SKCANNON_DATA_DIR``, else a per-user cache.

    The per-user default is ``$XDG_CACHE_HOME/skcannon`` (``~/.cache/skcannon``). Files below it are
    laid out like the archive, so the directory doubles as a mirror.
    """
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "skcannon"


def apstar_relpath(telescope: str, field: str, apogee_id: str) -> str:
    """Archive path of a DR17 apStar file, relative to the archive base URL."""
    for name, value in (("telescope", telescope), ("field", field), ("apogee_id", apogee_id)):
        value = str(value).strip()
        if not value or "/" in value or value in (".", ".."):
            raise ValueError(f"invalid {name} for an apStar path: {value!r}")
    return APSTAR_PATH_TEMPLATE.format(
        telescope=str(telescope).strip(), field=str(field).strip(),
        apogee_id=str(apogee_id).strip(),
    )


def allstar_relpath() -> str:
    """Archive path of the DR17 allStar catalog, relative to the archive base URL."""
    return ALLSTAR_PATH


def join_url(base: str, relpath: str) -> str:
    """``base`` and ``relpath`` joined with exactly one slash."""
    return f"{base.rstrip('/')}/{relpath.lstrip('/')}"
