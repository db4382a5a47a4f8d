"""What a survey run labels: files on disk, or files the archive holds that the workers fetch.

An input is any of: a spectrum file (any product of :mod:`skcannon.data.products`); a
directory (searched recursively for ``apStar*``, ``aspcapStar*`` and ``apVisit*`` FITS files and
``*.npz``); a glob; or a table (FITS, CSV or Parquet) with either a ``PATH`` column or the
archive's ``APOGEE_ID``, ``TELESCOPE`` and ``FIELD`` columns (an allStar catalog, a selection).
Table rows of the second kind name a DR17 apStar file under the data directory; where it is not
there yet, the worker that labels it fetches it from the archive (:func:`fetch_file`: cached,
validated, resumed), so nothing is downloaded up front.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from skcannon.apogee.archive import apstar_relpath, archive_url, data_dir, join_url
from skcannon.apogee.catalog import decode_fits_column
from skcannon.errors import BadFileError, SkcannonError
from skcannon.integrity import read_csv_table

#: File-name patterns a directory is searched for.
SPECTRUM_PATTERNS = ("apStar*.fits", "aspcapStar*.fits", "apVisit*.fits", "*.npz")
#: Suffixes of input tables.
TABLE_SUFFIXES = (".csv", ".parquet")
#: Columns naming an archive file.
ARCHIVE_COLUMNS = ("APOGEE_ID", "TELESCOPE", "FIELD")


@dataclass(frozen=True)
class SurveyInput:
    """One input file: where it is (or will be) and, when it may have to be fetched, its URL.

    Attributes
    ----------
    path : str
        The file on disk (for an archive file: where it is cached under the data directory).
    url : str or None, default=None
        The archive URL it is fetched from when absent; None for local files.
    problem : str or None, default=None
        Why the input cannot be used at all (e.g. a catalog row naming no file); its row is a
        "bad file" with this problem, and nothing is read.
    """

    path: str
    url: str | None = None
    problem: str | None = None


def canonical_path(path: str | Path) -> str:
    """``path`` made absolute and normalized (``.``, ``..`` and repeated separators removed;
    symbolic links are kept, so a file linked under two names stays two inputs).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    str
    """
    return os.path.abspath(path)


def read_input_table(path: Path) -> pd.DataFrame:
    """The rows of an input table (FITS HDU 1, CSV or Parquet); only the columns a survey
    uses are read from a FITS catalog (PATH, or APOGEE_ID/TELESCOPE/FIELD, and SNR).

    Parameters
    ----------
    path : Path
        The table; ``.csv`` and ``.parquet`` by suffix, anything else as FITS.

    Returns
    -------
    DataFrame
        One row per input (CSV: PATH and the archive columns read as strings).

    Raises
    ------
    BadFileError
        Naming the file, when it cannot be read as a table.
    """
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return read_csv_table(path, dtype={c: str for c in (*ARCHIVE_COLUMNS, "PATH")})
        if suffix == ".parquet":
            return pd.read_parquet(path)
        from astropy.io import fits

        with fits.open(path, memmap=True) as hdul:
            data = hdul[1].data
            names = [c for c in ("PATH", *ARCHIVE_COLUMNS, "SNR") if c in data.columns.names]
            return pd.DataFrame({c: decode_fits_column(np.asarray(data[c])) for c in names})
    except Exception as exc:
        raise BadFileError(path, f"cannot be read as a table of inputs ({type(exc).__name__}: "
                                 f"{exc})") from exc


def inputs_from_table(table: pd.DataFrame, source: str | Path, *, directory: Path,
                      archive: str) -> list[SurveyInput]:
    """Inputs from a table's rows: its ``PATH`` column, or the DR17 apStar file that
    ``APOGEE_ID``, ``TELESCOPE`` and ``FIELD`` name (under ``directory``, from ``archive``).

    Parameters
    ----------
    table : DataFrame
        One row per input.
    source : str or path-like
        Where the table came from (named in errors).
    directory : Path
        Data directory the archive files are cached in.
    archive : str
        Archive base URL.

    Returns
    -------
    list of SurveyInput
        One per row, in row order (with a URL for archive rows).

    Raises
    ------
    BadFileError
        Naming ``source``, when the table has neither kind of column.
    """
    if "PATH" in table:
        return [SurveyInput(canonical_path(p)) if isinstance(p, str) and p.strip() else
                _bad_row(source, k, f"PATH {p!r} names no file")
                for k, p in enumerate(table["PATH"])]
    if not all(c in table for c in ARCHIVE_COLUMNS):
        raise BadFileError(source, "a table of inputs needs a PATH column, or APOGEE_ID, "
                                   "TELESCOPE and FIELD columns (an allStar catalog)")
    inputs = []
    columns = [table[c].fillna("").astype(str).str.strip() for c in ARCHIVE_COLUMNS]
    for k, (apogee_id, telescope, field) in enumerate(zip(*columns, strict=True)):
        try:
            relpath = apstar_relpath(telescope, field, apogee_id)
        except ValueError as exc:       # blank, or a part that would leave its directory
            inputs.append(_bad_row(source, k, f"APOGEE_ID {apogee_id!r}, TELESCOPE "
                                              f"{telescope!r}, FIELD {field!r}: {exc}"))
            continue
        inputs.append(SurveyInput(canonical_path(directory / relpath),
                                  join_url(archive, relpath)))
    return inputs


def _bad_row(source: str | Path, row: int, problem: str) -> SurveyInput:
    """The input of a table row that names no usable file (a flagged row, never a crash)."""
    return SurveyInput(f"{canonical_path(source)} row {row}", problem=f"{source} row {row}: "
                                                                      f"{problem}")


def survey_inputs(items: Iterable[str], *, directory: str | Path | None = None,
                  archive: str | None = None, cuts=None) -> list[SurveyInput]:
    """The inputs that ``items`` name (see the module docstring), in a stable order, each once.

    Parameters
    ----------
    items : iterable of str
        Files, directories, globs or tables.
    directory : str or path-like, default=None
        Data directory of archive files; None: :func:`skcannon.apogee.archive.data_dir`'s
        default.
    archive : str, default=None
        Archive base URL; None: :func:`skcannon.apogee.archive.archive_url`'s default.
    cuts : QualityCuts, default=None
        Applied to catalog tables (:func:`skcannon.apogee.catalog.select_giants`, every
        field); None: every row is an input.

    Returns
    -------
    list of SurveyInput
        Directories' files sorted, globs' matches sorted, duplicates dropped (first kept).

    Raises
    ------
    SkcannonError
        Naming the item: nothing there, an empty directory, a table without usable columns.
    """
    directory, archive = data_dir(directory), archive_url(archive)
    found: list[SurveyInput] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            files = sorted({str(f) for pattern in SPECTRUM_PATTERNS for f in path.rglob(pattern)})
            if not files:
                raise SkcannonError(f"{item}: no spectrum files ({', '.join(SPECTRUM_PATTERNS)})"
                                    " in this directory")
            found += [SurveyInput(canonical_path(f)) for f in files]
        elif path.is_file() and (path.suffix.lower() in TABLE_SUFFIXES or _is_catalog(path)):
            found += _table_inputs(path, directory, archive, cuts)
        elif path.exists():
            found.append(SurveyInput(canonical_path(path)))
        else:
            matches = sorted(glob.glob(item))
            if not matches:
                raise SkcannonError(f"{item}: no such file, directory or matching files")
            found += [SurveyInput(canonical_path(m)) for m in matches]
    return list(dict.fromkeys(found))      # canonical paths: a file named twice is one input


def _is_catalog(path: Path) -> bool:
    """A FITS file whose HDU 1 is a binary table with the columns of a table of inputs (files
    named like a spectrum product are taken as spectra without opening them: a shell glob may
    name a hundred thousand)."""
    if path.suffix.lower() not in (".fits", ".fit") or any(
            path.match(pattern) for pattern in SPECTRUM_PATTERNS):
        return False
    from astropy.io import fits

    try:
        with fits.open(path, memmap=True) as hdul:
            if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
                return False
            names = set(hdul[1].columns.names)
    except Exception:      # not readable as FITS: the product reader names the problem
        return False
    return "PATH" in names or set(ARCHIVE_COLUMNS) <= names


def _table_inputs(path: Path, directory: Path, archive: str, cuts) -> list[SurveyInput]:
    if cuts is not None:
        from skcannon.apogee.catalog import read_catalog, select_giants

        table = select_giants(read_catalog(path), fields=None, cuts=cuts)
    else:
        table = read_input_table(path)
    if not len(table):
        raise SkcannonError(f"{path}: no rows" + (" pass the quality cuts" if cuts else ""))
    return inputs_from_table(table, path, directory=directory, archive=archive)
