"""Outliers of a label comparison, each with what could explain it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from skcannon.apogee.bitmask import ASPCAPFLAG_BITS, STARFLAG_BITS, decode_flags
from skcannon.labels import fitted_column, offset_column, reference_column
from skcannon.spectra import SKCANNON_BITS
from skcannon.stats import robust_scatter


def find_outliers(reference: np.ndarray, fit, label_names: Sequence[str],
                  *, scatter: np.ndarray | None = None, k: float = 3.0,
                  info: pd.DataFrame | None = None) -> pd.DataFrame:
    """Stars off by more than ``k`` scatters in any label, with what could explain each.

    Parameters
    ----------
    reference : ndarray of shape (n_stars, n_labels)
    fit : LabelFit
        Fitted labels of the same stars (:class:`skcannon.inference.LabelFit`).
    label_names : sequence of str of length n_labels
    scatter : ndarray of shape (n_labels,), default=None
        Scatter per label; None: the robust scatter of the residuals.
    k : float, default=3.0
        Threshold in scatters.
    info : DataFrame, default=None
        n_stars rows; columns used when present: APOGEE_ID, SNR, STARFLAG, ASPCAPFLAG,
        MASKED_FRACTION, FLAGS (skcannon continuum/regrid bits).

    Returns
    -------
    DataFrame
        One row per outlier: ``index``, ``APOGEE_ID``, per label ``<LABEL>_REF``,
        ``<LABEL>_FIT`` and ``<LABEL>_OFF_SIGMA``, ``REDUCED_CHI2`` and ``EXPLANATION``.
    """
    residual = fit.labels - reference
    if scatter is None:
        scatter = robust_scatter(residual, axis=0)
    far = np.abs(residual) > k * np.asarray(scatter)[None, :]
    rows = []
    info = info.reset_index(drop=True) if info is not None else pd.DataFrame(
        index=range(len(reference)))
    for n in np.flatnonzero(far.any(axis=1)):
        reasons = fit.reasons(n)
        within = np.abs(residual[n]) < k * fit.uncertainties[n]
        if np.all(within[far[n]]):
            reasons.append("within its own formal uncertainty (noisy spectrum)")
        low, high = fit.training_range
        if np.any((reference[n] < low) | (reference[n] > high)):
            reasons.append("reference labels outside the training range")
        row = info.iloc[n].to_dict() if len(info.columns) else {}
        if "MASKED_FRACTION" in row and row["MASKED_FRACTION"] > 0.2:
            reasons.append(f"{row['MASKED_FRACTION']:.0%} of pixels masked")
        if "SNR" in row and np.isfinite(row["SNR"]) and row["SNR"] < 70:
            reasons.append(f"low SNR ({row['SNR']:.0f})")
        if _flag(row, "FLAGS"):
            names = decode_flags(_flag(row, "FLAGS"), SKCANNON_BITS)
            reasons.append("preprocessing flags " + ", ".join(names))
        for column, names in (("STARFLAG", STARFLAG_BITS), ("ASPCAPFLAG", ASPCAPFLAG_BITS)):
            if _flag(row, column):
                reasons.append(f"{column} " + ", ".join(decode_flags(_flag(row, column), names)))
        entry = {"index": int(n), "APOGEE_ID": row.get("APOGEE_ID", str(n))}
        for i, name in enumerate(label_names):
            entry[reference_column(name)] = reference[n, i]
            entry[fitted_column(name)] = fit.labels[n, i]
            entry[offset_column(name)] = residual[n, i] / scatter[i]
        entry["REDUCED_CHI2"] = fit.reduced_chi2[n]
        entry["EXPLANATION"] = "; ".join(reasons) or "no flag explains it"
        rows.append(entry)
    return pd.DataFrame(rows)



def _flag(row: dict, column: str) -> int:
    """An integer flag column of a row; 0 when absent or missing."""
    value = row.get(column)
    try:
        return int(value) if value is not None and np.isfinite(float(value)) else 0
    except (TypeError, ValueError):
        return 0
