"""Where APOGEE files live: archive URLs and the local data (cache) directory."""

from __future__ import annotations

import os
from pathlib import Path

from skcannon.apogee.constants import (
    ALLSTAR_PATH,
    ALLSTARLITE_PATH,
    APSTAR_PATH_TEMPLATE,
    ARCHIVE_URL_ENV,
    DATA_DIR_ENV,
    DEFAULT_ARCHIVE_URL,
    TELESCOPE_FILE_PREFIX,
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


def telescope_prefix(telescope: str) -> str:
    """File-name prefix of a telescope's DR17 files: ``"as"`` for LCO, ``"ap"`` for APO.

    Parameters
    ----------
    telescope : str
        Telescope directory, e.g. ``"apo25m"``, ``"apo1m"`` or ``"lco25m"``.

    Returns
    -------
    str
        From :data:`~skcannon.apogee.constants.TELESCOPE_FILE_PREFIX`; a telescope not listed
        there gets ``"as"`` when its name starts with ``lco`` (APOGEE-South), else ``"ap"``, as
        DR17's ``apload.allfile`` decides by instrument.
    """
    telescope = str(telescope).strip()
    known = TELESCOPE_FILE_PREFIX.get(telescope)
    if known is not None:
        return known
    return "as" if telescope.lower().startswith("lco") else "ap"


def apstar_relpath(telescope: str, field: str, apogee_id: str, *,
                   file: str | None = None) -> str:
    """Archive path of a DR17 combined spectrum (apStar/asStar), relative to the archive URL.

    The one place archive paths of spectra are made: the downloader and the mirror index both
    use it.

    Parameters
    ----------
    telescope : str
        Telescope directory, e.g. ``"apo25m"``, ``"apo1m"`` or ``"lco25m"``.
    field : str
        Field name, e.g. ``"M15"``.
    apogee_id : str
        The star's APOGEE_ID, e.g. ``"2M21295618+1217018"``.
    file : str or None, default=None
        The catalog's own FILE entry (allStar's ``FILE`` column, e.g.
        ``"asStar-dr17-2M...fits"``): used as the file name when given and not empty
        (NaN counts as not given); otherwise the name comes from the telescope's prefix
        (:func:`telescope_prefix`) and ``apogee_id``.

    Returns
    -------
    str
        ``dr17/apogee/spectro/redux/dr17/stars/{telescope}/{field}/{prefix}Star-dr17-{id}.fits``
        (or ``.../{field}/{file}``), each part stripped of surrounding whitespace.

    Raises
    ------
    ValueError
        A part is empty, contains ``/``, or is ``.`` or ``..`` (it would leave its directory).
    """
    parts = {"telescope": telescope, "field": field, "apogee_id": apogee_id}
    name = "" if file is None or (isinstance(file, float) and file != file) else str(file)
    if name.strip():
        parts["file"] = name
    for key, value in parts.items():
        value = str(value).strip()
        if not value or "/" in value or value in (".", ".."):
            raise ValueError(f"invalid {key} for an apStar path: {value!r}")
        parts[key] = value
    path = APSTAR_PATH_TEMPLATE.format(prefix=telescope_prefix(parts["telescope"]), **{
        k: parts[k] for k in ("telescope", "field", "apogee_id")})
    if "file" in parts:
        path = f"{path.rsplit('/', 1)[0]}/{parts['file']}"
    return path


def allstar_relpath(lite: bool = False) -> str:
    """Archive path of the DR17 allStar (or allStarLite) catalog, relative to the archive URL.

    Parameters
    ----------
    lite : bool, default=False
        The allStarLite file (the same rows, fewer columns, every column skcannon reads)
        instead of the full allStar file (~4 GB).

    Returns
    -------
    str
        ``dr17/apogee/spectro/aspcap/dr17/synspec_rev1/allStar-dr17-synspec_rev1.fits``
        (``allStarLite-...`` with ``lite``).
    """
    return ALLSTARLITE_PATH if lite else ALLSTAR_PATH


def join_url(base: str, relpath: str) -> str:
    """``base`` and ``relpath`` joined with exactly one slash."""
    return f"{base.rstrip('/')}/{relpath.lstrip('/')}"
