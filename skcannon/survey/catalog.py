"""The merged survey catalog as a FITS table that says what each column is.

Every column gets a unit (``TUNITn``, where it has one) and a one-line description (``TCOMMn``,
the convention TOPCAT shows), as :mod:`skcannon.schema` declares them for the model's label
names, and the header names the column of each bit of ``FLAGS`` (``FLAGn``), so the file
explains itself in TOPCAT and astropy without this package. Text columns hold UTF-8 bytes (FITS
strings are ASCII; a non-ASCII path or APOGEE_ID is stored as its UTF-8 encoding, which the
column description says), so any path or identifier is written as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from skcannon import schema
from skcannon.integrity import atomic_write


def _fits_unit(unit: str) -> tuple[str, str]:
    """(TUNIT value, unit text for the description): the FITS standard knows K but not dex,
    so a unit involving dex is given in the description only (astropy warns on it otherwise)."""
    return ("" if "dex" in unit else unit), (f" [{unit}]" if unit else "")


def column_metadata(label_names: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Column name -> (FITS unit, description) for a model with ``label_names``: every column
    :mod:`skcannon.schema` declares (PRODUCT's description names the registered products)."""
    from skcannon.data.products import product_names

    meta = {}
    for declared in schema.output_columns(label_names):
        unit, say = _fits_unit(declared.unit)
        text = " (UTF-8 text)" if declared.dtype == "str" else ""
        meta[declared.name] = (unit, declared.description + say + text)
    unit, text = meta["PRODUCT"]
    meta["PRODUCT"] = (unit, f"{text} ({', '.join(product_names())})")
    return meta


def write_catalog(table: pd.DataFrame, path: str | Path, label_names: Sequence[str]) -> Path:
    """Write ``table`` as a FITS binary table with units and descriptions (atomically)."""
    from astropy.io import fits
    from astropy.table import Table

    meta = column_metadata(label_names)
    table = table.copy()
    for name in table.columns:          # text as UTF-8 bytes: FITS strings are ASCII
        if not (pd.api.types.is_numeric_dtype(table[name]) or
                pd.api.types.is_bool_dtype(table[name])):
            table[name] = [v.encode("utf-8") if isinstance(v, str) else v for v in table[name]]
    astropy_table = Table.from_pandas(table)
    hdu = fits.table_to_hdu(astropy_table)
    for k, name in enumerate(astropy_table.colnames, start=1):
        unit, text = meta.get(name, ("", ""))
        if unit:
            hdu.header[f"TUNIT{k}"] = unit
        if text:
            hdu.header[f"TCOMM{k}"] = text
    for name, bit in schema.flag_bits().items():
        hdu.header[f"FLAG{bit}"] = (name, f"column of bit {bit} of {schema.FLAGS}")
    hdu.header["EXTNAME"] = "SKCANNON_SURVEY"
    with atomic_write(path, overwrite=True) as tmp:
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp)
    return Path(path)
