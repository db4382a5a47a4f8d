"""The merged survey catalog as a FITS table that says what each column is.

Every column gets a unit (``TUNITn``, where it has one) and a one-line description (``TCOMMn``,
the convention TOPCAT shows), written from the label names, so the file explains itself in
TOPCAT and astropy without this package.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from skcannon.integrity import atomic_write
from skcannon.labels import LABEL_UNITS, covariance_column, error_column, formal_error_column

#: Descriptions of the columns that do not depend on the labels.
FIXED_COLUMNS = {
    "PATH": "input file",
    "SPECTRUM": "index of the spectrum within its file (0 for a single spectrum)",
    "APOGEE_ID": "2MASS-style APOGEE identifier",
    "PRODUCT": "spectrum product read (apStar, aspcapStar, apVisit, normalized)",
    "STATUS": "'fitted', or 'bad file' (unreadable, missing or not fetched: see PROBLEM)",
    "PROBLEM": "why the file could not be used (empty when fitted)",
    "SNR": "signal-to-noise ratio from the file's header",
    "CHI2": "chi^2 of the best fit over the usable pixels",
    "REDUCED_CHI2": "chi^2 per degree of freedom",
    "N_PIXELS": "pixels used in the fit",
    "EXCESS_SCATTER": "extra scatter beyond noise and model s^2 the residuals need (flux)",
    "CONVERGED": "the optimizer converged",
    "ON_BOUND": "a label ended on a bound (training range +- margin)",
    "OUTSIDE_TRAINING": "a label lies outside the training range",
    "UNLIKE_TRAINING": "the spectrum is unlike the training spectra (EXCESS_SCATTER large)",
    "STARTS_DISAGREE": "optimizer starts reached different minima",
    "CONFIDENT": "converged, not on a bound, inside the training range, like the training set",
    "BEST_START": "index of the winning optimizer start",
    "SECOND_CHI2": "chi^2 of the best start that reached another minimum",
    "MODEL_SHA256": "SHA-256 of the model file",
    "SKCANNON_VERSION": "skcannon version that wrote the row",
}


def _fits_unit(units: Sequence[str]) -> tuple[str, str]:
    """(TUNIT value, unit text for the description): the FITS standard knows K but not dex,
    so a unit involving dex is given in the description only (astropy warns on it otherwise)."""
    text = " ".join(u for u in units if u)
    return ("" if "dex" in text else text), (f" [{text}]" if text else "")


def column_metadata(label_names: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Column name -> (FITS unit, description) for a model with ``label_names``."""
    meta = {name: ("", text) for name, text in FIXED_COLUMNS.items()}
    for i, name in enumerate(label_names):
        unit, say = _fits_unit([LABEL_UNITS.get(name, "")])
        meta[name] = (unit, f"{name} fitted by the Cannon{say}")
        meta[error_column(name)] = (unit, f"{name} uncertainty (calibrated where the model "
                                          f"has a calibration, else formal){say}")
        meta[formal_error_column(name)] = (unit, f"{name} formal (noise-only) uncertainty{say}")
        for other in label_names[i + 1:]:
            unit2, say2 = _fits_unit([LABEL_UNITS.get(name, ""), LABEL_UNITS.get(other, "")])
            meta[covariance_column(name, other)] = (unit2, f"covariance of {name} and "
                                                           f"{other}{say2}")
    return meta


def write_catalog(table: pd.DataFrame, path: str | Path, label_names: Sequence[str]) -> Path:
    """Write ``table`` as a FITS binary table with units and descriptions (atomically)."""
    from astropy.io import fits
    from astropy.table import Table

    meta = column_metadata(label_names)
    astropy_table = Table.from_pandas(table)
    hdu = fits.table_to_hdu(astropy_table)
    for k, name in enumerate(astropy_table.colnames, start=1):
        unit, text = meta.get(name, ("", ""))
        if unit:
            hdu.header[f"TUNIT{k}"] = unit
        if text:
            hdu.header[f"TCOMM{k}"] = text
    hdu.header["EXTNAME"] = "SKCANNON_SURVEY"
    with atomic_write(path, overwrite=True) as tmp:
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp)
    return Path(path)
