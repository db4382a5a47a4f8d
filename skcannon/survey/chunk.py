"""One chunk of a survey, as a Dask worker runs it: read -> preprocess -> infer -> one table.

Pure with respect to the run: a chunk's result depends only on its files, the model and the
preprocessing options, so a re-run may skip a chunk whose part file exists. A file that cannot be
read becomes a row with ``STATUS = "bad file"`` and the reason; it never fails the chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from skcannon.apogee.reader import read_apstar, stack_apstar
from skcannon.data.build import default_preprocessor, normalize_spectra
from skcannon.errors import SkcannonError

#: STATUS of a row whose spectrum was fitted, and of one whose file could not be used.
FITTED, BAD_FILE = "fitted", "bad file"


def label_chunk(paths: Sequence[str], model, continuum_pixels, *, n_starts: int = 4,
                seed: int = 0) -> pd.DataFrame:
    """Labels of the apStar files ``paths`` with ``model`` (a fitted Cannon).

    Every file is read once, all readable spectra are preprocessed together (masking,
    regridding onto the model's grid, continuum normalization with ``continuum_pixels``) and
    fitted in one batch (:meth:`Cannon.infer_labels`, ``n_starts``, ``seed``).

    Returns
    -------
    DataFrame, one row per path, in order: PATH, APOGEE_ID, STATUS, PROBLEM, SNR, then the
    columns of :meth:`LabelFit.to_frame` (NaN for bad files).
    """
    spectra, rows = [], []
    for path in paths:
        try:
            spectrum = read_apstar(path)
        except SkcannonError as exc:
            rows.append({"PATH": str(path), "APOGEE_ID": Path(path).stem, "STATUS": BAD_FILE,
                         "PROBLEM": str(exc), "SNR": np.nan})
            continue
        spectra.append(spectrum)
        rows.append({"PATH": str(path), "APOGEE_ID": spectrum.apogee_id, "STATUS": FITTED,
                     "PROBLEM": "", "SNR": spectrum.snr})
    table = pd.DataFrame(rows)
    if not spectra:
        return table
    normalized = normalize_spectra(stack_apstar(spectra), default_preprocessor(continuum_pixels))
    model.check_wavelength(normalized.wavelength, "the preprocessed spectra")
    fit = model.infer_labels(normalized.normalized, n_starts=n_starts, seed=seed)
    fitted = fit.to_frame()
    fitted.index = table.index[(table.STATUS == FITTED).to_numpy()]
    columns = fitted.reindex(table.index)             # bad files: NaN, flags False, ints -1
    for name in fitted.columns:
        if fitted[name].dtype == bool:
            columns[name] = columns[name].astype("boolean").fillna(False).astype(bool)
        elif np.issubdtype(fitted[name].dtype, np.integer):
            columns[name] = columns[name].fillna(-1).astype(np.int64)
    return pd.concat([table, columns], axis=1)
