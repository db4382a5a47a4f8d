"""The DR17 allStar catalog: reading it, and selecting the giants the Cannon is trained on.

Missing values
--------------
Every source's nulls are recognised in one place, :func:`skcannon.labels.null_forms`: FITS NaN,
ASPCAP's -9999, SkyServer's NOT NULL sentinels (-9999.99 too: anything at or below -9000) and
empty strings. :func:`select_giants` turns them into NaN and its cut table counts each form.

Duplicates
----------
One star (one APOGEE_ID) can appear several times in allStar: once per field and telescope that
observed it. ``QualityCuts.duplicates`` decides what happens to these entries:

* ``"keep"`` (default, what the course lab asks for): every entry is kept; the cut table counts
  the entries of stars seen more than once, and ``N_ENTRIES`` gives each star's count.
* ``"highest_snr"``: of each star's entries *that pass the other cuts*, the one with the highest
  SNR is kept.
* ``"extratarg"``: DR17's own choice: entries with EXTRATARG bit 4 (DUPLICATE, "non-primary (not
  highest S/N) duplicate") are dropped. DR17 set that bit over the whole catalog before any cut,
  so a star whose highest-SNR entry fails a cut here (e.g. its labels are null) loses every
  entry, where ``"highest_snr"`` would keep its best surviving one; and a star with entries in
  fields outside the selection keeps none in the selection when its primary entry lies outside.
  Needs the catalog's EXTRATARG column (allStar, allStarLite).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from numbers import Real
from pathlib import Path

import numpy as np
import pandas as pd

from skcannon.apogee.bitmask import EXTRATARG_DUPLICATE_BIT
from skcannon.apogee.constants import (
    ARCHIVE_CATALOG_VERSION,
    DEFAULT_FIELDS,
    SKYSERVER_CATALOG_VERSION,
)
from skcannon.errors import CatalogError
from skcannon.integrity import atomic_write, read_csv_table
from skcannon.labels import DEFAULT_LABELS, NULL_FORMS, error_column, missing_label, null_forms

#: Columns every catalog must have (besides the label columns and their _ERR columns).
ID_COLUMNS = ("APOGEE_ID", "TELESCOPE", "FIELD", "SNR", "STARFLAG", "ASPCAPFLAG")
#: Columns read when a catalog has them: the file name of each entry's spectrum (allStar's
#: FILE: ``apStar-dr17-...`` or ``asStar-dr17-...``), the targeting flags (EXTRATARG, for
#: ``duplicates="extratarg"``) and the ASPCAP version of each row (a selection's own).
OPTIONAL_COLUMNS = ("FILE", "EXTRATARG", "CATALOG_VERSION")
#: Catalog sources ``--catalog`` names, besides files, URLs and "skyserver": the archive's
#: allStarLite (default) and full allStar files.
ARCHIVE_CATALOGS = ("allstarlite", "allstar")
#: The catalog used when none is named: allStarLite (every needed column; the full allStar
#: file is ~4 GB).
DEFAULT_CATALOG = "allstarlite"
#: Every name ``--catalog`` accepts besides a path or URL.
CATALOG_CHOICES = (*ARCHIVE_CATALOGS, "skyserver")
#: How each null form is named in the cut table.
NULL_FORM_TEXT = {"non-finite": "NaN/inf", "sentinel": "<= -9000 (null sentinel)",
                  "empty": "empty"}
#: The ways of treating a star's several catalog entries (see the module docstring).
DUPLICATE_RULES = ("keep", "highest_snr", "extratarg")


@dataclass(frozen=True)
class QualityCuts:
    """The quality cuts of :func:`select_giants`, each configurable.

    Attributes
    ----------
    require_labels : bool
        Drop stars lacking any label (NaN, a null at or below -9000, an empty string).
    min_snr : float
        Drop stars with SNR below this.
    max_logg, max_teff : float
        Drop dwarfs: LOGG above ``max_logg`` or TEFF above ``max_teff``.
    min_feh : float
        Drop stars with FE_H below this (the quadratic model is poor at low metallicity).
        Each cut must be a finite number (ValueError naming it otherwise).
    duplicates : {"keep", "highest_snr", "extratarg"}
        How entries sharing an APOGEE_ID are treated (see the module docstring); default
        ``"keep"``.
    """

    require_labels: bool = True
    min_snr: float = 50.0
    max_logg: float = 4.0
    max_teff: float = 5700.0
    min_feh: float = -1.0
    duplicates: str = "keep"

    def __post_init__(self) -> None:
        for name in ("min_snr", "max_logg", "max_teff", "min_feh"):
            value = getattr(self, name)      # a cut at NaN or inf keeps or drops everything
            if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value):
                raise ValueError(f"QualityCuts.{name} must be a finite number; got {value!r}")
        if self.duplicates not in DUPLICATE_RULES:
            raise ValueError(f"duplicates must be one of {', '.join(DUPLICATE_RULES)}; got "
                             f"{self.duplicates!r}")


def decode_fits_column(column: np.ndarray) -> np.ndarray:
    """A FITS table column as pandas takes it: byte strings decoded and stripped, numbers in
    native byte order (FITS is big-endian)."""
    if column.dtype.kind == "S":                 # ASCII, or UTF-8 from write_selection
        return np.char.strip(np.char.decode(column, "utf-8", errors="replace")).astype(object)
    if column.dtype.kind == "U":
        return np.char.strip(column).astype(object)
    return column.astype(column.dtype.newbyteorder("="))  # FITS is big-endian; pandas is not


def catalog_columns(labels: Sequence[str] = DEFAULT_LABELS) -> list[str]:
    """Columns :func:`select_giants` reads: ids, SNR, flags, labels and label errors."""
    return [*ID_COLUMNS, *labels, *(error_column(label) for label in labels)]


def read_catalog(
    source: str | Path, *, labels: Sequence[str] = DEFAULT_LABELS,
    data_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Read an allStar-like catalog into a DataFrame with the columns of :func:`catalog_columns`.

    Parameters
    ----------
    source : str or Path
        A FITS file (allStar; only the needed columns are read), a CSV or parquet extract, or an
        ``http(s)://`` URL of one of these (fetched into ``data_dir`` first, see
        :func:`skcannon.apogee.download.fetch_file`).
    labels : sequence of str, default=DEFAULT_LABELS
        Label columns to read (their ``_ERR`` columns are read too).
    data_dir : str, Path or None, default=None
        Data directory a URL ``source`` is fetched into (below ``catalogs/``); None uses
        :func:`skcannon.apogee.archive.data_dir`. Unused for a local ``source``.

    Returns
    -------
    pandas.DataFrame, shape (n_entries, n_columns)
        One row per catalog entry with the columns of :func:`catalog_columns`, in that order,
        then those of :data:`OPTIONAL_COLUMNS` the file has (a copy); APOGEE_ID, TELESCOPE,
        FIELD (and FILE) as stripped strings. ``.attrs["catalog_version"]`` is
        :func:`catalog_version` of ``source``.

    Raises
    ------
    CatalogError
        The file does not exist, cannot be read or lacks a needed column (all named).
    """
    path = _local_catalog(source, data_dir)
    wanted = catalog_columns(labels)
    try:
        frame = _read_table(path, wanted)
    except CatalogError:
        raise
    except Exception as exc:
        raise CatalogError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from exc
    _check_columns(path, set(frame.columns), wanted)
    frame = frame[wanted + [c for c in OPTIONAL_COLUMNS if c in frame.columns]].copy()
    for column in ("APOGEE_ID", "TELESCOPE", "FIELD"):
        frame[column] = frame[column].astype(str).str.strip()
    if "FILE" in frame.columns:        # an empty cell means "not given", never "nan"
        frame["FILE"] = frame["FILE"].astype(str).str.strip().where(frame["FILE"].notna(), "")
    frame.attrs["catalog_version"] = catalog_version(source)
    return frame


def catalog_version(source: str | Path) -> str:
    """The ASPCAP version of a catalog, from its name: ``"synspec_rev1"``, ``"synspec"``
    (SkyServer's DR17 tables, or a file so named) or ``"unknown"``.

    Parameters
    ----------
    source : str or Path
        The catalog's path or URL, or ``"skyserver"``.

    Returns
    -------
    str
        The version; ``"unknown"`` when the name says nothing (e.g. a CSV extract).
    """
    name = str(source).lower()
    if name == "skyserver":
        return SKYSERVER_CATALOG_VERSION
    for version in (ARCHIVE_CATALOG_VERSION, SKYSERVER_CATALOG_VERSION):   # rev1 first
        if version in name:
            return version
    return "unknown"


def _local_catalog(source: str | Path, data_dir: str | Path | None) -> Path:
    """The catalog file of ``source``: a URL is fetched into ``data_dir``/catalogs first.

    Raises
    ------
    CatalogError
        When the file does not exist.
    """
    source_str = str(source)
    if source_str.startswith(("http://", "https://", "file://")):
        from skcannon.apogee.archive import data_dir as default_data_dir
        from skcannon.apogee.download import fetch_file

        name = source_str.rstrip("/").rsplit("/", 1)[-1]
        local = default_data_dir(data_dir) / "catalogs" / name
        fetch_file(source_str, local, validate=None)
        source = local
    path = Path(source)
    if not path.is_file():
        raise CatalogError(f"{path}: catalog file not found")
    return path


def _read_table(path: Path, wanted: Sequence[str]) -> pd.DataFrame:
    """The table at ``path`` by its suffix: of a FITS file (HDU 1) only the ``wanted``
    columns, checked; a CSV or Parquet file whole."""
    suffix = "".join(path.suffixes).lower()
    if suffix.endswith((".fits", ".fit", ".fits.gz")):
        from astropy.io import fits

        with fits.open(path, memmap=True) as hdul:
            if len(hdul) < 2 or not hasattr(hdul[1], "columns"):
                raise CatalogError(f"{path}: HDU 1 is not a table; not an allStar catalog")
            names = set(hdul[1].columns.names)
            _check_columns(path, names, wanted)
            data = hdul[1].data
            columns = [*wanted, *(c for c in OPTIONAL_COLUMNS if c in names)]
            return pd.DataFrame({c: decode_fits_column(np.asarray(data[c])) for c in columns})
    if suffix.endswith(".csv"):
        return read_csv_table(path)
    if suffix.endswith(".parquet"):
        return pd.read_parquet(path)
    raise CatalogError(f"{path}: unknown catalog format {suffix!r} "
                       "(expected .fits, .csv or .parquet)")


def _check_columns(path: object, available: set[str], wanted: Sequence[str]) -> None:
    missing = [c for c in wanted if c not in available]
    if missing:
        raise CatalogError(f"{path}: catalog lacks column(s) {', '.join(missing)}")


def select_giants(
    catalog: pd.DataFrame,
    *,
    fields: Sequence[str] | None = DEFAULT_FIELDS,
    cuts: QualityCuts | None = None,
    labels: Sequence[str] = DEFAULT_LABELS,
) -> pd.DataFrame:
    """Select red giants with good labels in the given fields.

    Parameters
    ----------
    catalog : DataFrame
        allStar-like table (see :func:`read_catalog`).
    fields : sequence of str or None
        FIELD values to keep; None keeps every field.
    cuts : QualityCuts, optional
        The quality cuts (defaults: labels present, SNR >= 50, no dwarfs, FE_H >= -1, every
        entry of a star kept).
    labels : sequence of str
        Label columns that must be present.

    Returns
    -------
    DataFrame
        The selected rows, in catalog order, with missing labels (every null form, see
        :func:`skcannon.labels.null_forms`) turned to NaN, an ``N_ENTRIES`` column (the
        star's entries among the rows passing the other cuts) and a ``CATALOG_VERSION``
        column (the catalog's own, else its ``.attrs["catalog_version"]``, else
        ``"unknown"``). ``.attrs``: ``"cut_table"`` (a list of ``{"cut", "removed",
        "remaining"}`` dicts; the labels row names the rows it removed per null form, the
        duplicates row the entries of stars seen more than once), ``"cuts"`` (the cuts used),
        ``"null_counts"`` (rows removed per null form), ``"duplicate_entries"`` and
        ``"catalog_versions"`` (the sorted versions of the selected rows; more than one means
        the sources were mixed).

    Raises
    ------
    CatalogError
        A requested field is not in the catalog, or a needed column is missing (EXTRATARG
        for ``duplicates="extratarg"``).
    """
    cuts = cuts or QualityCuts()
    _check_columns("catalog", set(catalog.columns), ["APOGEE_ID", "FIELD", "SNR", *labels])
    for column in ("TEFF", "LOGG", "FE_H"):
        if column not in catalog.columns:
            raise CatalogError(f"catalog lacks column {column} needed by the giant cuts")
    if cuts.duplicates == "extratarg" and "EXTRATARG" not in catalog.columns:
        raise CatalogError("catalog lacks column EXTRATARG needed by duplicates='extratarg' "
                           "(use allStar or allStarLite, or duplicates='highest_snr')")
    frame = _nulls_to_nan(catalog.reset_index(drop=True).copy(), labels)
    if "CATALOG_VERSION" not in frame.columns:
        frame["CATALOG_VERSION"] = catalog.attrs.get("catalog_version", "unknown")
    frame, table, attrs = _apply_cuts(frame, _giant_cuts(cuts, fields, labels))
    frame.attrs = {"cut_table": table, "cuts": asdict(cuts), **attrs,
                   "catalog_versions": sorted(set(frame["CATALOG_VERSION"]))}
    return frame


def _nulls_to_nan(frame: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """``frame`` with every null form of the labels as NaN (numbers), and one temporary
    column per null form marking the rows with such a null in any label."""
    nulls = {form: np.zeros(len(frame), dtype=bool) for form in NULL_FORMS}
    for label in labels:
        for form, where in null_forms(frame[label]).items():
            nulls[form] |= where
        frame[label] = np.where(missing_label(frame[label]), np.nan,
                                pd.to_numeric(frame[label], errors="coerce"))
    for form in NULL_FORMS:
        frame[_null_column(form)] = nulls[form]
    return frame


def _apply_cuts(frame: pd.DataFrame, steps) -> tuple[pd.DataFrame, list[dict], dict]:
    """The cuts ``steps`` applied in order: the rows left (null columns dropped), the cut
    table, and the null and duplicate counts (see :func:`select_giants`)."""
    attrs: dict = {"null_counts": {form: 0 for form in NULL_FORMS}}
    table: list[dict] = [{"cut": "catalog", "removed": 0, "remaining": len(frame)}]
    for name, keep_of in steps:
        keep = keep_of(frame)
        row = {"cut": name, "removed": int((~keep).sum()), "remaining": int(keep.sum())}
        if name.startswith("labels present"):
            attrs["null_counts"] = {form: int(frame.loc[~keep, _null_column(form)].sum())
                                    for form in NULL_FORMS}
            row["cut"] += ": " + ", ".join(f"{n} {NULL_FORM_TEXT[form]}"
                                           for form, n in attrs["null_counts"].items())
        if name.startswith("duplicates"):
            repeated = frame["N_ENTRIES"].to_numpy() > 1
            attrs["duplicate_entries"] = int(repeated.sum())
            stars = frame.loc[repeated, "APOGEE_ID"].nunique()
            row["cut"] += (f": {attrs['duplicate_entries']} entries of {stars} stars seen "
                           "more than once")
        frame = frame[keep].reset_index(drop=True)
        table.append(row)
    return frame.drop(columns=[_null_column(form) for form in NULL_FORMS]), table, attrs


def _null_column(form: str) -> str:
    """Temporary column marking the rows with a label null of ``form``."""
    return f"__null_{form}"


def _giant_cuts(cuts: QualityCuts, fields: Sequence[str] | None, labels: Sequence[str]
                ) -> list[tuple[str, Callable[[pd.DataFrame], np.ndarray]]]:
    """The cuts of :func:`select_giants` in order: (name in the cut table, the function giving
    the rows of a frame that pass it)."""
    steps = []
    if fields is not None:
        fields = [str(f).strip() for f in fields]
        steps.append((f"field in {', '.join(fields)}", lambda f: _in_fields(f, fields)))
    if cuts.require_labels:
        steps.append((f"labels present ({', '.join(labels)})",
                      lambda f: _labels_present(f, labels)))
    steps += [
        (f"SNR >= {cuts.min_snr:g}", lambda f: _at_least(f["SNR"], cuts.min_snr)),
        (f"giants (drop LOGG > {cuts.max_logg:g} or TEFF > {cuts.max_teff:g})",
         lambda f: ~((f["LOGG"].to_numpy(dtype=float) > cuts.max_logg)
                     | (f["TEFF"].to_numpy(dtype=float) > cuts.max_teff))),
        (f"FE_H >= {cuts.min_feh:g}",
         lambda f: ~(f["FE_H"].to_numpy(dtype=float) < cuts.min_feh)),
    ]
    steps.append(DUPLICATE_STEPS[cuts.duplicates])
    return steps
def _in_fields(frame: pd.DataFrame, fields: list[str]) -> np.ndarray:
    """Rows in one of ``fields`` (CatalogError naming any field the catalog does not have)."""
    field_names = frame["FIELD"].astype(str).str.strip()     # integer or padded FIELDs
    known = set(field_names)
    unknown = [f for f in fields if f not in known]
    if unknown:
        examples = ", ".join(sorted(known)[:5])
        raise CatalogError(f"unknown field(s) {', '.join(unknown)}: not in the catalog "
                           f"({len(known)} fields, e.g. {examples})")
    return field_names.isin(fields).to_numpy()


def _labels_present(frame: pd.DataFrame, labels: Sequence[str]) -> np.ndarray:
    present = np.ones(len(frame), dtype=bool)
    for label in labels:
        present &= ~missing_label(frame[label])
    return present


def _at_least(values: pd.Series, minimum: float) -> np.ndarray:
    values = values.to_numpy(dtype=float)
    return np.isfinite(values) & (values >= minimum)


def _count_entries(frame: pd.DataFrame) -> None:
    """Each star's number of entries in ``frame``, in its ``N_ENTRIES`` column."""
    frame["N_ENTRIES"] = frame.groupby("APOGEE_ID")["APOGEE_ID"].transform("size").to_numpy()


def _keep_all_entries(frame: pd.DataFrame) -> np.ndarray:
    """Every entry (``N_ENTRIES`` recorded)."""
    _count_entries(frame)
    return np.ones(len(frame), dtype=bool)


def _highest_snr_entry(frame: pd.DataFrame) -> np.ndarray:
    """The highest-SNR entry of each APOGEE_ID (``N_ENTRIES`` recorded before)."""
    _count_entries(frame)
    order = frame.sort_values("SNR", ascending=False, kind="stable")
    best = order.drop_duplicates("APOGEE_ID", keep="first").index
    keep = np.zeros(len(frame), dtype=bool)
    keep[best] = True
    return keep


def _extratarg_primary(frame: pd.DataFrame) -> np.ndarray:
    """Entries without EXTRATARG bit 4 (DUPLICATE) set (``N_ENTRIES`` recorded before)."""
    _count_entries(frame)
    flags = pd.to_numeric(frame["EXTRATARG"], errors="coerce").fillna(0).to_numpy(np.int64)
    return (flags & (1 << EXTRATARG_DUPLICATE_BIT)) == 0


#: The cut-table row and the rule of each ``QualityCuts.duplicates`` value.
DUPLICATE_STEPS: dict[str, tuple[str, Callable[[pd.DataFrame], np.ndarray]]] = {
    "keep": ("duplicates kept (every entry of each APOGEE_ID)", _keep_all_entries),
    "highest_snr": ("duplicates (keep highest SNR per APOGEE_ID)", _highest_snr_entry),
    "extratarg": ("duplicates (drop EXTRATARG bit 4, DR17's non-primary entries)",
                  _extratarg_primary),
}


def format_cut_table(table: list[dict]) -> str:
    """The cut table as aligned text.

    Parameters
    ----------
    table : list of dict
        Rows with keys ``"cut"`` (str), ``"removed"`` and ``"remaining"`` (int), as in
        ``select_giants(...).attrs["cut_table"]``; at least one row.

    Returns
    -------
    str
        A header line and one line per row: the cut left-aligned, the counts right-aligned,
        lines joined by newlines (no trailing newline).

    Raises
    ------
    ValueError
        ``table`` is empty.
    """
    width = max(len(row["cut"]) for row in table)
    lines = [f"{'cut':<{width}}  {'removed':>8}  {'remaining':>9}"]
    lines += [f"{row['cut']:<{width}}  {row['removed']:>8d}  {row['remaining']:>9d}"
              for row in table]
    return "\n".join(lines)


def check_table_output(path: str | Path) -> str:
    """The table format of ``path`` by its suffix, checked before any work is done: a known
    suffix whose writer is installed (parquet needs pyarrow).

    Raises
    ------
    CatalogError
        Naming the file: unknown suffix, or parquet without pyarrow.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in (".csv", ".parquet", ".fits", ".fit"):
        raise CatalogError(f"{path}: unknown table format {suffix!r} (use .fits, .csv or "
                           ".parquet)")
    if suffix == ".parquet":
        import importlib.util

        if importlib.util.find_spec("pyarrow") is None:
            raise CatalogError(f"{path}: writing parquet needs pyarrow (pip install pyarrow), "
                               "or use .fits or .csv")
    return suffix


def write_selection(selection: pd.DataFrame, path: str | Path) -> Path:
    """Write a selection (or any table) to FITS, CSV or parquet (by suffix), atomically,
    replacing an existing file.

    Parameters
    ----------
    selection : DataFrame
        The table, e.g. from :func:`select_giants`; its index and ``attrs`` (the cut table)
        are not written.
    path : str or Path
        Output file; the suffix (``.fits``/``.fit``, ``.csv`` or ``.parquet``) picks the
        format.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    CatalogError
        Naming the file: unknown suffix, or parquet without pyarrow (checked before writing).
    """
    path = Path(path)
    suffix = check_table_output(path)
    plain = pd.DataFrame(selection)
    plain.attrs = {}
    with atomic_write(path, overwrite=True) as tmp:
        if suffix == ".csv":
            plain.to_csv(tmp, index=False)
        elif suffix == ".parquet":
            plain.to_parquet(tmp, index=False)
        else:
            from astropy.table import Table

            Table.from_pandas(_utf8_text(plain)).write(tmp, format="fits")
    return path


def _utf8_text(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its non-ASCII text columns as UTF-8 bytes: FITS tables hold bytes, and
    astropy encodes text as ASCII (a non-ASCII path or APOGEE_ID: a UnicodeEncodeError).
    Read back with :func:`decode_fits_column` or :func:`read_selection`."""
    frame = frame.copy()
    for column in frame.columns:
        values = frame[column]
        if (values.dtype == object or pd.api.types.is_string_dtype(values.dtype)) and \
                values.map(lambda v: isinstance(v, str) and not v.isascii()).any():
            frame[column] = values.map(lambda v: v.encode("utf-8") if isinstance(v, str) else v
                                       ).astype(object)
    return frame


def read_selection(path: str | Path) -> pd.DataFrame:
    """Read a selection written by :func:`write_selection`.

    Parameters
    ----------
    path : str or Path
        A ``.csv``, ``.parquet``, ``.fits`` or ``.fit`` file.

    Returns
    -------
    DataFrame of shape (n_rows, n_columns)
        The table as written; APOGEE_ID, FIELD and TELESCOPE as strings (read as text from CSV,
        decoded from bytes from FITS).

    Raises
    ------
    CatalogError
        Naming the file: not found, an unknown suffix, or lacking a column APOGEE_ID,
        TELESCOPE or FIELD.
    """
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{path}: selection file not found")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = read_csv_table(path, dtype={"APOGEE_ID": str, "FIELD": str, "TELESCOPE": str})
    elif suffix == ".parquet":
        frame = pd.read_parquet(path)
    elif suffix in (".fits", ".fit"):
        from astropy.table import Table

        frame = Table.read(path).to_pandas()
        for column in ("APOGEE_ID", "FIELD", "TELESCOPE"):
            if column in frame and frame[column].dtype == object:
                frame[column] = frame[column].map(
                    lambda v: v.decode() if isinstance(v, bytes) else v)
    else:
        raise CatalogError(f"{path}: unknown selection format {suffix!r}")
    _check_columns(path, set(frame.columns), ["APOGEE_ID", "TELESCOPE", "FIELD"])
    return frame


def skyserver_query(fields: Sequence[str], labels: Sequence[str] = DEFAULT_LABELS) -> str:
    """SQL for SkyServer (DR17 ``apogeeStar`` joined with ``aspcapStar``) giving the same columns
    as :func:`read_catalog` for the given fields, with FILE and EXTRATARG (apogeeStar's
    ``[file]`` and ``extratarg``, sciserver/sqlloader ``schema/sql/ApogeeTables.sql``).

    Parameters
    ----------
    fields : sequence of str
        FIELD values to select.
    labels : sequence of str, default=DEFAULT_LABELS
        Label columns (aspcapStar's, lower case in SQL), with their ``_err`` columns.

    Returns
    -------
    str
        The SQL statement.

    Raises
    ------
    ValueError
        A field name contains a quote or a semicolon.
    """
    for f in fields:
        if "'" in f or ";" in f:
            raise ValueError(f"invalid field name {f!r}")
    label_cols = ", ".join(f"a.{lab.lower()}, a.{lab.lower()}_err" for lab in labels)
    field_list = ", ".join(f"'{f}'" for f in fields)
    return (
        "SELECT s.apogee_id, s.telescope, s.field, s.snr, s.starflag, a.aspcapflag, "
        f"{label_cols}, s.[file], s.extratarg FROM apogeeStar AS s JOIN aspcapStar AS a "
        f"ON a.apstar_id = s.apstar_id WHERE s.field IN ({field_list})"
    )


def query_skyserver(
    fields: Sequence[str] = DEFAULT_FIELDS, *, labels: Sequence[str] = DEFAULT_LABELS,
    data_release: int = 17, url: str | None = None,
) -> pd.DataFrame:
    """The catalog rows of the given fields from SkyServer SQL via astroquery (needs internet).

    SkyServer's DR17 tables hold the ASPCAP "synspec" results (the archive's files default to
    "synspec_rev1"), and are NOT NULL: missing values come as sentinels (-9999, -9999.99),
    which :func:`select_giants` treats as missing.

    Parameters
    ----------
    fields : sequence of str, default=DEFAULT_FIELDS
        FIELD values to query (``("M15", "N6791", "K2_C4_168-21", "060+00")`` by default).
    labels : sequence of str, default=DEFAULT_LABELS
        Label columns to fetch, with their ``_ERR`` columns.
    data_release : int, default=17
        SDSS data release queried.
    url : str or None, default=None
        SkyServer base URL (astroquery's ``conf.skyserver_baseurl``, set for this query only);
        None: astroquery's (``https://skyserver.sdss.org``). Replicas and tests point it at a
        local server. Results are not cached by astroquery.

    Returns
    -------
    DataFrame of shape (n_rows, n_columns)
        The columns of :func:`catalog_columns` (as :func:`read_catalog` gives them), then FILE
        and EXTRATARG, ready for :func:`select_giants`; no rows when the query finds none.
        ``.attrs["catalog_version"]`` is ``"synspec"``.

    Raises
    ------
    ValueError
        A field name contains a quote or a semicolon.
    ImportError
        astroquery is not installed.
    """
    from astroquery.sdss import SDSS, conf

    sql = skyserver_query(fields, labels)
    with conf.set_temp("skyserver_baseurl", url.rstrip("/")) if url else contextlib.nullcontext():
        result = SDSS.query_sql(sql, data_release=data_release, cache=False)
    columns = [*catalog_columns(labels), "FILE", "EXTRATARG"]
    if result is None:
        frame = pd.DataFrame(columns=columns)
    else:
        frame = result.to_pandas()
        frame.columns = [c.upper() for c in frame.columns]
        frame = frame[columns].copy()
        for column in ("APOGEE_ID", "TELESCOPE", "FIELD", "FILE"):
            frame[column] = frame[column].astype(str).str.strip()
    frame.attrs["catalog_version"] = SKYSERVER_CATALOG_VERSION
    return frame


def load_catalog_source(
    source: str | None, *, archive: str | None = None, fields: Sequence[str] | None = None,
    data_dir: str | Path | None = None, skyserver_url: str | None = None,
    labels: Sequence[str] = DEFAULT_LABELS,
) -> pd.DataFrame:
    """The catalog named by ``--catalog``: an archive file by name, SkyServer, or a file.

    Parameters
    ----------
    source : str or None
        ``"allstarlite"`` (None means this: the default, the smallest archive file holding
        every needed column), ``"allstar"`` (the full ~4 GB file), ``"skyserver"`` (SQL for
        the requested fields only, ASPCAP "synspec" labels), or a path or URL of a FITS, CSV
        or parquet catalog.
    archive : str or None, default=None
        Archive base URL for the archive files (see
        :func:`skcannon.apogee.archive.archive_url`).
    fields : sequence of str or None, default=None
        Fields a SkyServer query asks for (None: the mission's default fields).
    data_dir : str, Path or None, default=None
        Where downloaded catalog files are kept (below ``catalogs/``).
    skyserver_url : str or None, default=None
        SkyServer base URL (see :func:`query_skyserver`).
    labels : sequence of str, default=DEFAULT_LABELS
        Label columns to read.

    Returns
    -------
    DataFrame of shape (n_entries, n_columns)
        As :func:`read_catalog` or :func:`query_skyserver` give it, with
        ``.attrs["catalog_version"]`` and ``.attrs["catalog_source"]`` (the URL, path or
        ``"skyserver"``).

    Raises
    ------
    CatalogError
        The file cannot be read or lacks a column.
    DownloadError
        An archive file or URL cannot be fetched.
    """
    from skcannon.apogee.archive import allstar_relpath, archive_url, join_url

    name = source or DEFAULT_CATALOG
    if name == "skyserver":
        frame = query_skyserver(fields or DEFAULT_FIELDS, labels=labels, url=skyserver_url)
    else:
        if name in ARCHIVE_CATALOGS:
            name = join_url(archive_url(archive), allstar_relpath(lite=name == "allstarlite"))
        frame = read_catalog(name, labels=labels, data_dir=data_dir)
    frame.attrs["catalog_source"] = name
    return frame
