"""Build a training-set file from a selection and downloaded apStar files."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline, make_pipeline

from skcannon._version import __version__
from skcannon.apogee.archive import apstar_relpath, data_dir
from skcannon.apogee.reader import read_apstar, stack_apstar
from skcannon.data.dataset import SpectralDataset
from skcannon.errors import SkcannonError
from skcannon.labels import DEFAULT_LABELS
from skcannon.preprocessing import BitmaskMasker, ContinuumNormalizer, Regridder
from skcannon.spectra import IVAR, MASK, SKCANNON_BITS


def default_preprocessor(continuum_pixels, **normalizer_options) -> Pipeline:
    """masking -> regridding onto the continuum grid -> continuum normalization."""
    return make_pipeline(BitmaskMasker(), Regridder(),
                         ContinuumNormalizer(continuum_pixels, **normalizer_options))


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def star_flags(X_norm: np.ndarray) -> np.ndarray:
    """OR of skcannon's own bits over each star's pixels, shape (n_stars,)."""
    ours = np.int64(sum(1 << bit for bit in SKCANNON_BITS))
    bits = X_norm[:, MASK].astype(np.int64) & ours
    return np.bitwise_or.reduce(bits, axis=1)


def prepare_dataset(
    selection: pd.DataFrame,
    continuum_pixels,
    directory: str | Path | None = None,
    labels: Sequence[str] = DEFAULT_LABELS,
    preprocessor: Pipeline | None = None,
) -> tuple[SpectralDataset, list[dict]]:
    """Read, mask, regrid and normalize the selection's apStar files into a dataset.

    Files are found under ``directory`` at their archive paths. A star whose file is missing or
    bad is skipped and reported (the batch goes on).

    Returns
    -------
    dataset : SpectralDataset
    problems : list of dict
        ``{"apogee_id", "path", "problem"}`` for each skipped star.
    """
    root = data_dir(directory)
    preprocessor = preprocessor or default_preprocessor(continuum_pixels)
    spectra, rows, problems, inputs = [], [], [], []
    for index, row in selection.reset_index(drop=True).iterrows():
        path = root / apstar_relpath(row["TELESCOPE"], row["FIELD"], row["APOGEE_ID"])
        try:
            spectrum = read_apstar(path)
        except SkcannonError as exc:
            problems.append({"apogee_id": row["APOGEE_ID"], "path": str(path),
                             "problem": str(exc)})
            continue
        spectra.append(spectrum)
        rows.append(index)
        inputs.append({"path": str(path.relative_to(root)), "sha256": file_digest(path)})
    if not spectra:
        raise SkcannonError(f"no readable apStar files for the selection under {root}")
    X_norm = preprocessor.fit_transform(stack_apstar(spectra))
    table = selection.reset_index(drop=True).iloc[rows].reset_index(drop=True).copy()
    table["SNR"] = [s.snr for s in spectra] if "SNR" not in table else table["SNR"]
    table["MASKED_FRACTION"] = np.mean(X_norm[:, IVAR] == 0, axis=1)
    normalizer = preprocessor[-1]
    provenance = {
        "package": "skcannon", "version": __version__,
        "preprocessing": {name: _plain_params(step) for name, step in preprocessor.steps},
        "labels": list(labels), "inputs": inputs, "skipped": problems,
    }
    dataset = SpectralDataset.from_spectra(normalizer.wavelength_, X_norm, table,
                                           star_flags(X_norm), provenance)
    return dataset, problems


def _plain_params(step) -> dict:
    params = {}
    for key, value in step.get_params(deep=False).items():
        if isinstance(value, np.ndarray):
            value = f"array{value.shape}"
        elif isinstance(value, Path):
            value = str(value)
        params[key] = value if isinstance(value, str | int | float | bool | type(None)) \
            else repr(value)
    return {"class": type(step).__name__, **params}
