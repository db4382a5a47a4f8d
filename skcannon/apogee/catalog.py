"""The DR17 allStar catalog: reading it, and selecting the giants the Cannon is trained on.

Duplicates
----------
One star (one APOGEE_ID) can appear several times in allStar: once per field and telescope that
observed it. :func:`select_giants` keeps, by default, the entry with the highest SNR of each star
among the entries that pass the other cuts (the same rule by which allStar marks the
others with EXTRATARG bit 4), so each star contributes one spectrum to training. With
``duplicates="keep"`` all entries are kept and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from numbers import Real
from pathlib import Path

import numpy as np
import pandas as pd

from skcannon.apogee.constants import ASPCAP_NULL, DEFAULT_FIELDS
from skcannon.errors import CatalogError
from skcannon.integrity import atomic_write
from skcannon.labels import DEFAULT_LABELS, error_column

#: Columns every catalog must have (besides the label columns and their _ERR columns).
ID_COLUMNS = ("APOGEE_ID", "TELESCOPE", "FIELD", "SNR", "STARFLAG", "ASPCAPFLAG")


@dataclass(frozen=True)
class QualityCuts:
    """The quality cuts of :func:`select_giants`, each configurable.

    Attributes
    ----------
    require_labels : bool
        Drop stars lacking any label (ASPCAP's null -9999, or NaN).
    min_snr : float
        Drop stars with SNR below this.
    max_logg, max_teff : float
        Drop dwarfs: LOGG above ``max_logg`` or TEFF above ``max_teff``.
    min_feh : float
        Drop stars with FE_H below this (the quadratic model is poor at low metallicity).
        Each cut must be a finite number (ValueError naming it otherwise).
    duplicates : {"highest_snr", "keep"}
        How entries sharing an APOGEE_ID are treated (see the module docstring).
    """

    require_labels: bool = True
    min_snr: float = 50.0
    max_logg: float = 4.0
    max_teff: float = 5700.0
    min_feh: float = -1.0
    duplicates: str = "highest_snr"

    def __post_init__(self) -> None:
        for name in ("min_snr", "max_logg", "max_teff", "min_feh"):
            value = getattr(self, name)      # a cut at NaN or inf keeps or drops everything
            if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value):
                raise ValueError(f"QualityCuts.{name} must be a finite number; got {value!r}")
        if self.duplicates not in ("highest_snr", "keep"):
            raise ValueError(
                f"duplicates must be 'highest_snr' or 'keep', got {self.duplicates!r}")


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
        One row per catalog entry with exactly the columns of :func:`catalog_columns`, in that
        order (a copy); APOGEE_ID, TELESCOPE and FIELD as stripped strings.

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
    frame = frame[wanted].copy()
    for column in ("APOGEE_ID", "TELESCOPE", "FIELD"):
        frame[column] = frame[column].astype(str).str.strip()
    return frame


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
            _check_columns(path, set(hdul[1].columns.names), wanted)
            data = hdul[1].data
            return pd.DataFrame({c: decode_fits_column(np.asarray(data[c])) for c in wanted})
    if suffix.endswith(".csv"):
        return pd.read_csv(path)
    if suffix.endswith(".parquet"):
        return pd.read_parquet(path)
    raise CatalogError(f"{path}: unknown catalog format {suffix!r} "
                       "(expected .fits, .csv or .parquet)")


def _check_columns(path: object, available: set[str], wanted: Sequence[str]) -> None:
    missing = [c for c in wanted if c not in available]
    if missing:
        raise CatalogError(f"{path}: catalog lacks column(s) {', '.join(missing)}")


def missing_label(values: pd.Series | np.ndarray) -> np.ndarray:
    """True where a label is missing: NaN, or ASPCAP's null (-9999)."""
    values = np.asarray(values, dtype=float)
    return ~np.isfinite(values) | np.isclose(values, ASPCAP_NULL)


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
        The quality cuts (defaults: labels present, SNR >= 50, no dwarfs, FE_H >= -1, one entry
        per star).
    labels : sequence of str
        Label columns that must be present.

    Returns
    -------
    DataFrame
        The selected rows, in catalog order, with missing-label nulls turned to NaN. The cut table
        (a list of ``{"cut", "removed", "remaining"}`` dicts) is in ``.attrs["cut_table"]``, the
        cuts used in ``.attrs["cuts"]``.

    Raises
    ------
    CatalogError
        A requested field is not in the catalog, or a needed column is missing.
    """
    cuts = cuts or QualityCuts()
    _check_columns("catalog", set(catalog.columns), ["APOGEE_ID", "FIELD", "SNR", *labels])
    for column in ("TEFF", "LOGG", "FE_H"):
        if column not in catalog.columns:
            raise CatalogError(f"catalog lacks column {column} needed by the giant cuts")
    frame = catalog.reset_index(drop=True).copy()
    for label in labels:
        frame[label] = np.where(missing_label(frame[label]), np.nan, frame[label])
    table: list[dict] = [{"cut": "catalog", "removed": 0, "remaining": len(frame)}]
    for name, keep_of in _giant_cuts(cuts, fields, labels):
        keep = keep_of(frame)
        frame = frame[keep].reset_index(drop=True)
        table.append({"cut": name, "removed": int((~keep).sum()), "remaining": len(frame)})
    frame.attrs["cut_table"] = table
    frame.attrs["cuts"] = asdict(cuts)
    return frame


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
    if cuts.duplicates == "highest_snr":
        steps.append(("duplicates (keep highest SNR per APOGEE_ID)", _highest_snr_entry))
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


def _highest_snr_entry(frame: pd.DataFrame) -> np.ndarray:
    """The highest-SNR entry of each APOGEE_ID; records each star's entry count in the
    frame's ``N_ENTRIES`` column."""
    order = frame.sort_values("SNR", ascending=False, kind="stable")
    best = order.drop_duplicates("APOGEE_ID", keep="first").index
    keep = np.zeros(len(frame), dtype=bool)
    keep[best] = True
    frame["N_ENTRIES"] = frame.groupby("APOGEE_ID")["APOGEE_ID"].transform("size").to_numpy()
    return keep


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
        frame = pd.read_csv(path, dtype={"APOGEE_ID": str, "FIELD": str, "TELESCOPE": str})
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
    as :func:`read_catalog` for the given fields."""
    for f in fields:
        if "'" in f or ";" in f:
            raise ValueError(f"invalid field name {f!r}")
    label_cols = ", ".join(f"a.{lab.lower()}, a.{lab.lower()}_err" for lab in labels)
    field_list = ", ".join(f"'{f}'" for f in fields)
    return (
        "SELECT s.apogee_id, s.telescope, s.field, s.snr, s.starflag, a.aspcapflag, "
        f"{label_cols} FROM apogeeStar AS s JOIN aspcapStar AS a ON a.apstar_id = s.apstar_id "
        f"WHERE s.field IN ({field_list})"
    )


def query_skyserver(
    fields: Sequence[str] = DEFAULT_FIELDS, *, labels: Sequence[str] = DEFAULT_LABELS,
    data_release: int = 17,
) -> pd.DataFrame:
    """The catalog rows of the given fields from SkyServer SQL via astroquery (needs internet).

    Parameters
    ----------
    fields : sequence of str, default=DEFAULT_FIELDS
        FIELD values to query (``("M15", "N6791", "K2_C4_168-21", "060+00")`` by default).
    labels : sequence of str, default=DEFAULT_LABELS
        Label columns to fetch, with their ``_ERR`` columns.
    data_release : int, default=17
        SDSS data release queried.

    Returns
    -------
    DataFrame of shape (n_rows, n_columns)
        The columns of :func:`catalog_columns` (as :func:`read_catalog` gives them), ready for
        :func:`select_giants`; no rows when the query finds none.

    Raises
    ------
    ValueError
        A field name contains a quote or a semicolon.
    ImportError
        astroquery is not installed.
    """
    from astroquery.sdss import SDSS

    result = SDSS.query_sql(skyserver_query(fields, labels), data_release=data_release)
    if result is None:
        return pd.DataFrame(columns=catalog_columns(labels))
    frame = result.to_pandas()
    frame.columns = [c.upper() for c in frame.columns]
    return frame[catalog_columns(labels)]
