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
    """Archive base URL: ``url`` if given, else ``$SKCANNON_ARCHIVE_URL``, else the SDSS SAS.

    Parameters
    ----------
    url : str or None, default=None
        Base URL to use; None (or "") falls back to the environment variable
        ``SKCANNON_ARCHIVE_URL``, then to ``https://data.sdss.org/sas``.

    Returns
    -------
    str
        The chosen base URL without trailing slashes.
    """
    chosen = url or os.environ.get(ARCHIVE_URL_ENV) or DEFAULT_ARCHIVE_URL
    return chosen.rstrip("/")


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """Data directory: ``path`` if given, else ``$SKCANNON_DATA_DIR``, else a per-user cache.

    The per-user default is ``$XDG_CACHE_HOME/skcannon`` (``~/.cache/skcannon``). Files below it are
    laid out like the archive, so the directory doubles as a mirror.

    Parameters
    ----------
    path : str, path-like or None, default=None
        Directory to use (``~`` expanded); None falls back to ``$SKCANNON_DATA_DIR`` (``~``
        expanded, when set and not empty), then to the per-user cache.

    Returns
    -------
    Path
        The data directory. It is neither created nor checked here.
    """
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "skcannon"


def apstar_relpath(telescope: str, field: str, apogee_id: str) -> str:
    """Archive path of a DR17 apStar file, relative to the archive base URL.

    Parameters
    ----------
    telescope : str
        Telescope directory, e.g. ``"apo25m"`` or ``"lco25m"``.
    field : str
        Field name, e.g. ``"M15"``.
    apogee_id : str
        The star's APOGEE_ID, e.g. ``"2M21295618+1217018"``.

    Returns
    -------
    str
        ``dr17/apogee/spectro/redux/dr17/stars/{telescope}/{field}/apStar-dr17-{apogee_id}.fits``
        with each part stripped of surrounding whitespace.

    Raises
    ------
    ValueError
        A part is empty, contains ``/``, or is ``.`` or ``..`` (it would leave its directory).
    """
    for name, value in (("telescope", telescope), ("field", field), ("apogee_id", apogee_id)):
        value = str(value).strip()
        if not value or "/" in value or value in (".", ".."):
            raise ValueError(f"invalid {name} for an apStar path: {value!r}")
    return APSTAR_PATH_TEMPLATE.format(
        telescope=str(telescope).strip(), field=str(field).strip(),
        apogee_id=str(apogee_id).strip(),
    )


def allstar_relpath() -> str:
    """Archive path of the DR17 allStar catalog, relative to the archive base URL.

    Returns
    -------
    str
        ``dr17/apogee/spectro/aspcap/dr17/synspec_rev1/allStar-dr17-synspec_rev1.fits``.
    """
    return ALLSTAR_PATH


def join_url(base: str, relpath: str) -> str:
    """``base`` and ``relpath`` joined with exactly one slash."""
    return f"{base.rstrip('/')}/{relpath.lstrip('/')}"
