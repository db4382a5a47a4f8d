"""Real APOGEE label tables (no spectra): realistic, correlated label distributions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from skcannon.apogee.constants import ASPCAP_NULL_THRESHOLD


def dr12_giant_labels(path: str | Path, label_names: Sequence[str], *,
                      min_feh: float = -1.0, max_logg: float = 4.0, max_teff: float = 5700.0
                      ) -> pd.DataFrame:
    """Real DR12 giant labels (``apogee_dr12_labels.csv``) with the selection's giant cuts.

    Derived columns: MG_FE = MG_H - FE_H, SI_FE = SI_H - FE_H, ALPHA_M = PARAM_ALPHA_M,
    M_H = PARAM_M_H. Rows with any requested label missing (NaN or <= -9000) are dropped.
    """
    table = pd.read_csv(path)
    table["MG_FE"] = table.MG_H - table.FE_H
    table["SI_FE"] = table.SI_H - table.FE_H
    table["ALPHA_M"] = table.PARAM_ALPHA_M
    table["M_H"] = table.PARAM_M_H
    for column in ("MG_H", "SI_H", "FE_H", "TEFF", "LOGG", "PARAM_ALPHA_M", "PARAM_M_H"):
        table.loc[table[column] <= ASPCAP_NULL_THRESHOLD, column] = np.nan
    table.loc[table.MG_H.isna() | table.FE_H.isna(), "MG_FE"] = np.nan
    table.loc[table.SI_H.isna() | table.FE_H.isna(), "SI_FE"] = np.nan
    keep = table[list(label_names)].notna().all(axis=1)
    keep &= (table.FE_H >= min_feh) & (table.LOGG <= max_logg) & (table.TEFF <= max_teff)
    return table.loc[keep, ["APOGEE_ID", *label_names]].reset_index(drop=True)
