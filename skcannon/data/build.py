"""From read apStar spectra to a dataset: preprocessing once, with what the figures need kept.

:func:`normalize_spectra` runs the preprocessing Pipeline (masking -> regridding -> continuum
normalization) and keeps the regridded input and the fitted continuum beside the result, so the
report draws the normalization diagnostic from them instead of preprocessing again.
:func:`build_dataset` turns read spectra and their catalog rows into a :class:`SpectralDataset`;
:func:`prepare_dataset` does the same from a selection, reading each file once;
:func:`normalize_apstar_files` reads and normalizes a few files (the commands' diagnostics).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from skcannon._version import __version__
from skcannon.apogee.archive import apstar_relpath, data_dir
from skcannon.apogee.preprocessor import default_preprocessor, recipe_or_none
from skcannon.apogee.reader import ApStarSpectrum, read_apstar, stack_apstar
from skcannon.data.dataset import SpectralDataset
from skcannon.errors import SkcannonError
from skcannon.labels import DEFAULT_LABELS
from skcannon.spectra import IVAR, MASK, SKCANNON_BITS


@dataclass(frozen=True)
class NormalizedSpectra:
    """Spectra through the preprocessing, with the intermediate arrays the diagnostics show.

    Attributes
    ----------
    wavelength : ndarray, shape (n_pixels,)
        The output grid.
    regridded : ndarray, shape (n_stars, 3, n_pixels)
        Masked and regridded input (before the continuum division).
    continuum : ndarray, shape (n_stars, n_pixels)
        The fitted pseudo-continuum.
    normalized : ndarray, shape (n_stars, 3, n_pixels)
        The normalized spectra.
    continuum_pixels : ndarray of bool, shape (n_pixels,)
    preprocessor : fitted Pipeline
    """

    wavelength: np.ndarray
    regridded: np.ndarray
    continuum: np.ndarray
    normalized: np.ndarray
    continuum_pixels: np.ndarray
    preprocessor: Pipeline


def is_fitted(preprocessor: Pipeline) -> bool:
    """True when every step of ``preprocessor`` is fitted (a loaded model's preprocessing).

    Parameters
    ----------
    preprocessor : sklearn.pipeline.Pipeline

    Returns
    -------
    bool
    """
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        for _, step in preprocessor.steps:
            check_is_fitted(step)
    except NotFittedError:
        return False
    return True


def normalize_spectra(X_raw: np.ndarray, preprocessor: Pipeline) -> NormalizedSpectra:
    """Run ``preprocessor`` (masking/regridding steps, then a :class:`ContinuumNormalizer`)
    on raw spectra, keeping the intermediate arrays.

    A fitted ``preprocessor`` (a loaded model's) is applied as it is - never re-fitted, so
    applying a model does not change it; an unfitted one is fitted here, in place.

    Parameters
    ----------
    X_raw : ndarray, shape (n_stars, 3, n_source_pixels)
        Raw spectra: flux, inverse variance, bitmask.
    preprocessor : sklearn.pipeline.Pipeline
        Masking and regridding steps, then the continuum normalizer.

    Returns
    -------
    NormalizedSpectra
    """
    if is_fitted(preprocessor):
        regridded = preprocessor[:-1].transform(X_raw)
        normalizer = preprocessor[-1]
    else:
        regridded = preprocessor[:-1].fit_transform(X_raw)
        normalizer = preprocessor[-1].fit(regridded)
    normalized, continuum = normalizer.normalize(regridded)
    return NormalizedSpectra(normalizer.wavelength_, regridded, continuum, normalized,
                             normalizer.continuum_mask_, preprocessor)


def draw_normalization(X_raw: np.ndarray, preprocessor: Pipeline, *, index: int = 0,
                       title: str = ""):
    """The normalization diagnostic of one raw spectrum, straight from arrays: the raw flux
    with the continuum pixels, the fitted pseudo-continuum, and the normalized flux
    (:func:`skcannon.plotting.normalization_figure`).

    Parameters
    ----------
    X_raw : ndarray, shape (n_stars, 3, n_source_pixels)
        Raw spectra: flux, inverse variance, bitmask (e.g. ``stack_spectra(flux, ivar,
        pixmask=...)`` or :func:`skcannon.apogee.stack_apstar`).
    preprocessor : sklearn.pipeline.Pipeline
        E.g. ``default_preprocessor(continuum_file)``; fitted here when it is not yet.
    index : int, default=0
        The star drawn.
    title : str, default=""
        Title of the top panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from skcannon.plotting import normalization_figure

    view = normalize_spectra(X_raw, preprocessor)
    return normalization_figure(view.wavelength, view.regridded[index], view.normalized[index],
                                view.continuum[index], view.continuum_pixels, title=title)


def normalize_apstar_files(paths: Sequence[str | Path], preprocessor: Pipeline
                           ) -> tuple[list[ApStarSpectrum], NormalizedSpectra | None]:
    """Read apStar files (once each) and run ``preprocessor`` on them; the read spectra and the
    :class:`NormalizedSpectra` (None when ``paths`` is empty)."""
    spectra = [read_apstar(path) for path in paths]
    if not spectra:
        return spectra, None
    return spectra, normalize_spectra(stack_apstar(spectra), preprocessor)


def star_flags(X_norm: np.ndarray) -> np.ndarray:
    """OR of skcannon's own bits over each star's pixels, shape (n_stars,)."""
    ours = np.int64(sum(1 << bit for bit in SKCANNON_BITS))
    bits = X_norm[:, MASK].astype(np.int64) & ours
    return np.bitwise_or.reduce(bits, axis=1)


def build_dataset(
    spectra: Sequence[ApStarSpectrum],
    table: pd.DataFrame,
    preprocessor: Pipeline,
    *,
    labels: Sequence[str] = DEFAULT_LABELS,
    root: Path | None = None,
    skipped: Sequence[dict] = (),
) -> tuple[SpectralDataset, NormalizedSpectra]:
    """Preprocess read spectra into a dataset whose table rows are ``table``'s, in order.

    ``root`` (the data directory) makes the recorded input paths relative; ``skipped`` are
    recorded in the provenance. Returns the dataset and the :class:`NormalizedSpectra`.
    """
    if len(spectra) != len(table):
        raise ValueError(f"{len(spectra)} spectra but {len(table)} table rows")
    if not spectra:
        raise SkcannonError("no spectra to preprocess")
    result = normalize_spectra(stack_apstar(spectra), preprocessor)
    X_norm = result.normalized
    table = table.reset_index(drop=True).copy()
    table["SNR"] = [s.snr for s in spectra] if "SNR" not in table else table["SNR"]
    table["MASKED_FRACTION"] = np.mean(X_norm[:, IVAR] == 0, axis=1)
    inputs = [{"path": _relative(s.path, root), "sha256": s.sha256} for s in spectra]
    provenance = {
        "package": "skcannon", "version": __version__,
        "preprocessing": {name: _plain_params(step) for name, step in preprocessor.steps},
        "preprocessing_recipe": recipe_or_none(preprocessor),
        "labels": list(labels), "inputs": inputs, "skipped": list(skipped),
    }
    dataset = SpectralDataset.from_spectra(result.wavelength, X_norm, table,
                                           flags=star_flags(X_norm), provenance=provenance)
    return dataset, result


def prepare_dataset(
    selection: pd.DataFrame,
    continuum_pixels,
    *,
    directory: str | Path | None = None,
    labels: Sequence[str] = DEFAULT_LABELS,
    preprocessor: Pipeline | None = None,
) -> tuple[SpectralDataset, list[dict]]:
    """Read (once each), mask, regrid and normalize the selection's apStar files.

    Files are found under ``directory`` at their archive paths. A star whose file is missing or
    bad is skipped and reported (the batch goes on).

    Returns
    -------
    dataset : SpectralDataset
    problems : list of dict
        ``{"apogee_id", "path", "problem"}`` for each skipped star.
    """
    root = data_dir(directory)
    spectra, rows, problems = [], [], []
    selection = selection.reset_index(drop=True)
    for index, row in selection.iterrows():
        path = root / apstar_relpath(row["TELESCOPE"], row["FIELD"], row["APOGEE_ID"])
        try:
            spectra.append(read_apstar(path))
        except SkcannonError as exc:
            problems.append({"apogee_id": row["APOGEE_ID"], "path": str(path),
                             "problem": str(exc)})
            continue
        rows.append(index)
    if not spectra:
        raise SkcannonError(f"no readable apStar files for the selection under {root}")
    dataset, _ = build_dataset(spectra, selection.iloc[rows],
                               preprocessor or default_preprocessor(continuum_pixels),
                               labels=labels, root=root, skipped=problems)
    return dataset, problems


def _relative(path: str, root: Path | None) -> str:
    if root is None:
        return path
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


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
