"""Import the published 4-label Cannon-style model trained on ~1800 APOKASC giants (DR12).

Files (directory ``cannon_apokasc_dr12/`` of the shared data, from jobovy/apogee):

* ``trained_apokasc_gc_ind_feh_fix.txt``: 15 x 7214 coefficients; terms
  [1, l1..l4, l1l1, l1l2, l1l3, l1l4, l2l2, l2l3, l2l4, l3l3, l3l4, l4l4] in the labels minus the
  baseline (unscaled) - the same term order as :class:`PolynomialVectorizer`.
* ``..._scatter.txt``: 7214 intrinsic scatters s (standard deviations).
* ``..._baseline_labels.txt``: Teff, log g, [Fe/H], [alpha/Fe] baseline (4500, 2, -0.3, 0.05).
* ``training_apokasc_gc_ind_feh_fix.txt``: the training stars (path, Teff, log g, [Fe/H],
  [alpha/Fe]).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from skcannon.apogee.grids import aspcap_dr12_wavelength
from skcannon.errors import BadFileError
from skcannon.integrity import file_digest
from skcannon.model.cannon import Cannon
from skcannon.model.scaling import LabelScaling
from skcannon.model.state import CannonState

REFERENCE_STEM = "trained_apokasc_gc_ind_feh_fix"
REFERENCE_TRAINING = "training_apokasc_gc_ind_feh_fix.txt"
#: The reference model's labels, as allStar-style names.
REFERENCE_LABELS = ("TEFF", "LOGG", "FE_H", "ALPHA_M")


def _load_text(path: Path, shape_hint: str) -> np.ndarray:
    if not path.is_file():
        raise BadFileError(path, "reference model file not found")
    try:
        return np.loadtxt(path)
    except ValueError as exc:
        raise BadFileError(path, f"cannot be read as {shape_hint} ({exc})") from exc


def load_reference_training_labels(directory: str | Path) -> pd.DataFrame:
    """The reference model's training labels: APOGEE_ID, TEFF, LOGG, FE_H, ALPHA_M."""
    path = Path(directory) / REFERENCE_TRAINING
    if not path.is_file():
        raise BadFileError(path, "reference training-label file not found")
    table = pd.read_csv(path, sep=r"\s+", header=None, names=["PATH", *REFERENCE_LABELS])
    table.insert(0, "APOGEE_ID", table.PATH.str.extract(r"(2M[0-9+\-]+)")[0])
    return table.drop(columns="PATH")


def load_reference_model(directory: str | Path) -> Cannon:
    """The published model as a fitted :class:`Cannon` (4 labels, quadratic).

    Parameters
    ----------
    directory : str or Path
        Directory holding the four files named in the module docstring (the shared data's
        ``cannon_apokasc_dr12/``).

    Returns
    -------
    Cannon
        Fitted, with labels TEFF, LOGG, FE_H, ALPHA_M, order 2, on the DR12 ASPCAP grid of
        7214 pixels: coefficients ``theta_`` of shape (7214, 15), ``s2_`` the squared scatters,
        ``pixel_mask_`` False where a scatter or coefficient is not finite, the label scaling
        subtracting the published baseline (scale 1), ``label_range_`` the training labels'
        min and max, and the coefficient file's digest as ``training_hash_``. The training
        log-likelihood and chi-squared are not published: zeros.

    Raises
    ------
    BadFileError
        A file is missing or not a table of numbers, or the arrays do not have the expected
        shapes (15 x 7214 coefficients, 7214 scatters, 4 baseline labels).
    """
    directory = Path(directory)
    theta = _load_text(directory / f"{REFERENCE_STEM}.txt", "a 15 x 7214 table")
    scatter = _load_text(directory / f"{REFERENCE_STEM}_scatter.txt", "7214 values")
    baseline = _load_text(directory / f"{REFERENCE_STEM}_baseline_labels.txt", "4 values")
    wavelength = aspcap_dr12_wavelength()
    if theta.shape != (15, wavelength.size) or scatter.shape != (wavelength.size,) \
            or baseline.shape != (4,):
        raise BadFileError(directory, f"unexpected shapes: coefficients {theta.shape}, scatter "
                                      f"{scatter.shape}, baseline {baseline.shape}")
    labels = load_reference_training_labels(directory)
    values = labels[list(REFERENCE_LABELS)].to_numpy(float)
    n_pixels = wavelength.size
    state = CannonState(
        theta=np.ascontiguousarray(theta.T), s2=scatter**2,
        pixel_mask=np.isfinite(scatter) & np.all(np.isfinite(theta), axis=0),
        scaling=LabelScaling(REFERENCE_LABELS, baseline, np.ones(4)),
        label_range=np.vstack([values.min(axis=0), values.max(axis=0)]),
        wavelength=wavelength, training_log_likelihood=np.zeros(n_pixels),
        training_chi2=np.zeros(n_pixels), training_dof=np.full(n_pixels, float(len(labels) - 15)),
        n_training_stars=len(labels),
        training_hash=file_digest(directory / f"{REFERENCE_STEM}.txt"),
        provenance={"source": "jobovy/apogee apogee/spec/cannon " + REFERENCE_STEM})
    return Cannon(REFERENCE_LABELS, order=2)._set_state(state)
