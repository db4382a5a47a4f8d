"""Real APOGEE label tables (no spectra): realistic, correlated label distributions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from skcannon.apogee.constants import ASPCAP_NULL_THRESHOLD
from skcannon.errors import CatalogError
from skcannon.integrity import read_csv_table

#: The columns of ``apogee_dr12_labels.csv`` each derived label is computed from.
DERIVED_FROM = {"MG_FE": ("MG_H", "FE_H"), "SI_FE": ("SI_H", "FE_H"),
                "ALPHA_M": ("PARAM_ALPHA_M",), "M_H": ("PARAM_M_H",)}


def dr12_giant_labels(path: str | Path, label_names: Sequence[str], *,
                      min_feh: float = -1.0, max_logg: float = 4.0, max_teff: float = 5700.0
                      ) -> pd.DataFrame:
    """Real DR12 giant labels (``apogee_dr12_labels.csv``) with the selection's giant cuts.

    Derived columns: MG_FE = MG_H - FE_H, SI_FE = SI_H - FE_H, ALPHA_M = PARAM_ALPHA_M,
    M_H = PARAM_M_H. Rows with any requested label missing (NaN or <= -9000) are dropped.

    Parameters
    ----------
    path : str or Path
        The label table (CSV).
    label_names : sequence of str
        Labels to return (columns of the table, or the derived ones above).
    min_feh, max_logg, max_teff : float, default=-1.0, 4.0, 5700.0
        The giant cuts.

    Returns
    -------
    DataFrame of shape (n_giants, 1 + n_labels)
        APOGEE_ID and the labels of the giants passing the cuts.

    Raises
    ------
    CatalogError
        Naming the file: a column needed by the labels or the cuts is missing, or holds text.
    """
    table = read_csv_table(path)
    _check_label_table(path, table, label_names)
    for name, (first, *rest) in DERIVED_FROM.items():
        if all(c in table for c in (first, *rest)):
            table[name] = table[first] - table[rest[0]] if rest else table[first]
    for column in ("MG_H", "SI_H", "FE_H", "TEFF", "LOGG", "PARAM_ALPHA_M", "PARAM_M_H"):
        if column in table:
            table.loc[table[column] <= ASPCAP_NULL_THRESHOLD, column] = np.nan
    for name in ("MG_FE", "SI_FE"):
        if name in table:
            table.loc[table[DERIVED_FROM[name][0]].isna() | table.FE_H.isna(), name] = np.nan
    keep = table[list(label_names)].notna().all(axis=1)
    keep &= (table.FE_H >= min_feh) & (table.LOGG <= max_logg) & (table.TEFF <= max_teff)
    return table.loc[keep, ["APOGEE_ID", *label_names]].reset_index(drop=True)


def _check_label_table(path, table: pd.DataFrame, label_names: Sequence[str]) -> None:
    """Refuse a label table lacking a column the labels or the giant cuts need, or holding
    text in one (a named :class:`CatalogError`, not a KeyError or TypeError later)."""
    from pandas.api.types import is_numeric_dtype

    needed = ["TEFF", "LOGG", "FE_H", *(c for n in label_names for c in DERIVED_FROM.get(n, (n,)))]
    needed = list(dict.fromkeys(needed))
    missing = [c for c in ["APOGEE_ID", *needed] if c not in table]
    if missing:
        raise CatalogError(f"{path}: label table lacks column(s) {', '.join(missing)} (needed "
                           f"for {', '.join(label_names)} and the giant cuts)")
    text = [c for c in needed if not is_numeric_dtype(table[c])]
    if text:
        raise CatalogError(f"{path}: column(s) {', '.join(text)} hold text, not numbers")
