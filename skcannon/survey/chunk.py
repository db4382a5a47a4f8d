"""One chunk of a survey, as a Dask worker runs it: (fetch) -> read -> preprocess -> infer ->
one table.

Pure with respect to the run: a chunk's result depends only on its files and the model (a
fitted Pipeline: its preprocessing, then the Cannon), so a re-run may skip a chunk whose part
file exists. A file that cannot be fetched or read becomes a row with ``STATUS = "bad file"``
and the reason, a local file that is not there one with ``STATUS = "missing"``, and a spectrum
with nothing to fit (no finite flux, every pixel masked or with a non-positive error, flux
zero or negative) one with ``STATUS = "unfitted"``; none of them fails the chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from skcannon import schema
from skcannon.apogee.reader import apogee_id_from_name
from skcannon.data.products import (
    ProductSpectra,
    prepare_for_model,
    read_product,
    spectrum_blocks,
)
from skcannon.errors import SkcannonError
from skcannon.spectra import FLUX, IVAR
from skcannon.survey.inputs import SurveyInput

#: STATUS of a row: fitted, its file unusable, its file not there, nothing to fit.
FITTED, BAD_FILE, MISSING, UNFITTED = (schema.STATUS_FITTED, schema.STATUS_BAD_FILE,
                                       schema.STATUS_MISSING, schema.STATUS_UNFITTED)


def _fetch_and_read(item: SurveyInput, product: str | None) -> ProductSpectra:
    """Read ``item``, fetching it first when it is not on disk and has a URL (the download is
    validated by reading it, and that read is the one used); no SHA-256 (the catalog records
    the model's, not the inputs')."""
    if item.url is None or Path(item.path).is_file():
        return read_product(item.path, product=product, digest=False)
    from skcannon.apogee.download import fetch_file

    kept: list[ProductSpectra] = []       # fetch_file validates whatever it returns with
    fetch_file(item.url, item.path, validate=lambda p: kept.append(
        read_product(p, product=product, digest=False)))
    return kept[-1]


def read_inputs(inputs: Sequence[SurveyInput | str], *, product: str | None = None
                ) -> tuple[pd.DataFrame, list[ProductSpectra]]:
    """Read (and fetch where needed) every input; unusable ones become flagged rows.

    Parameters
    ----------
    inputs : sequence of SurveyInput or str
        The files (a str: a local path); one with a URL that is not on disk is fetched there
        first (:func:`skcannon.apogee.download.fetch_file`, validated by the read used here).
    product : str or None, default=None
        One of :func:`skcannon.data.products.product_names`: every file must be that product
        (else it is a bad file); None: whichever product each file is.

    Returns
    -------
    rows : DataFrame, one row per spectrum (a bad file: one row)
        The schema's input columns (:data:`skcannon.schema.INPUT`: PATH, SPECTRUM (index in
        its file), APOGEE_ID, PRODUCT, STATUS, PROBLEM, SNR); a file that cannot be fetched
        or read has STATUS ``"bad file"`` and the reason in PROBLEM.
    spectra : list of ProductSpectra
        The readable files, in input order (no SHA-256 recorded).

    Raises
    ------
    ValueError
        When ``product`` is not a registered product (and there is an input).
    """
    rows, spectra = [], []
    for item in inputs:
        item = item if isinstance(item, SurveyInput) else SurveyInput(str(item))
        try:
            if item.problem:
                raise SkcannonError(item.problem)
            if item.url is None and not Path(item.path).exists():
                rows.append(_unread_row(item, product, MISSING, f"{item.path}: no such file"))
                continue
            found = _fetch_and_read(item, product)
        except SkcannonError as exc:
            rows.append(_unread_row(item, product, BAD_FILE, str(exc)))
            continue
        spectra.append(found)
        rows += [_input_row(PATH=item.path, SPECTRUM=k, APOGEE_ID=found.ids[k],
                            PRODUCT=found.product, STATUS=FITTED, PROBLEM="",
                            SNR=float(found.snr[k])) for k in range(len(found))]
    return pd.DataFrame(rows, columns=[c.name for c in schema.columns(schema.INPUT)]), spectra


def _unread_row(item: SurveyInput, product: str | None, status: str, problem: str) -> dict:
    """The row of an input that gave no spectrum: its APOGEE_ID is guessed from its name,
    and PROBLEM says so."""
    return _input_row(PATH=item.path, SPECTRUM=0,
                      APOGEE_ID=apogee_id_from_name(Path(item.path).name),
                      PRODUCT=product or "", STATUS=status,
                      PROBLEM=f"{problem} (APOGEE_ID guessed from the file name)", SNR=np.nan)


def _input_row(**values) -> dict:
    """One row of :func:`read_inputs`, checked to give every input column the schema
    declares, and no other."""
    names = [c.name for c in schema.columns(schema.INPUT)]
    if sorted(values) != sorted(names):
        raise ValueError(f"input row columns {sorted(values)} are not the schema's {names}")
    return values


def label_chunk(inputs: Sequence[SurveyInput | str], model: Pipeline, *,
                product: str | None = None, n_starts: int = 4, seed: int = 0,
                method: str = "lm", model_spectra: bool = False):
    """Labels of the spectra in ``inputs`` with ``model``.

    Every file is read once (fetched first where it has a URL and is not on disk), all
    readable spectra are preprocessed together with the model's preprocessing (normalized
    products are only masked and regridded, :func:`prepare_for_model`) and fitted in one batch
    (:meth:`Cannon.infer_labels`, ``method``, ``n_starts``, ``seed``).

    Parameters
    ----------
    inputs : sequence of SurveyInput or str
    model : Pipeline
        Fitted: the preprocessing steps, then a :class:`CannonRegressor`
        (see :func:`skcannon.pipeline.model.model_pipeline`).
    model_spectra : bool, default=False
        Also return the best-fit model spectrum and continuum of every fitted row
        (:func:`skcannon.inference.nuisance.best_fit_spectra`).

    Returns
    -------
    table : DataFrame, one row per spectrum, in input order
        The columns of :func:`read_inputs`, then those of :meth:`LabelFit.to_frame` (NaN,
        False or -1 for bad files).
    spectra : dict, only with ``model_spectra``
        ``{"row": (n,) rows of ``table`` with STATUS fitted, "model": (n, n_pixels),
        "continuum": (n, n_pixels), "wavelength": (n_pixels,) or None}``.
    """
    preprocessor, regressor = model[:-1], model[-1]
    check_output_grid(model, "the preprocessed spectra")  # before any file is read or fetched
    table, spectra = read_inputs(inputs, product=product)
    saved = _no_spectra(regressor) if model_spectra else None
    if not spectra:
        return (table, saved) if model_spectra else table
    normalized = prepare_for_model(spectra, preprocessor)
    read = table.index[(table.STATUS == FITTED).to_numpy()]
    reasons = _raw_reasons(spectra)
    reasons[(reasons == "") & ~_any_usable(normalized)] = (
        "no usable pixel after the model's preprocessing (every pixel masked)")
    good = reasons == ""
    if good.any():
        fit = regressor.cannon_.infer_labels(normalized if good.all() else normalized[good],
                                             method=method,
                                             n_starts=n_starts, margin=regressor.margin,
                                             seed=seed, **regressor.nuisance_options())
        fitted = fit.to_frame()
        fitted.index = read[good]
        reasons[good] = np.where(fit.n_good > 0, np.where(np.all(
            np.isfinite(fit.labels), axis=1), "", "the fit gave non-finite labels"),
            "the fit used no pixel")
        table = fill_unfitted(pd.concat([table, fitted.reindex(table.index)], axis=1),
                              dict(fitted.dtypes))
        if model_spectra:
            saved = _best_fit(regressor, normalized[good], fit, read[good],
                              reasons[good] == "")
    unfitted = read[reasons != ""]
    table.loc[unfitted, "STATUS"] = UNFITTED
    table.loc[unfitted, "PROBLEM"] = reasons[reasons != ""]
    return (table, saved) if model_spectra else table


def _no_spectra(regressor) -> dict:
    """The model spectra of a chunk with no fitted row."""
    n_pixels = regressor.cannon_.theta_.shape[0]
    return {"row": np.zeros(0, np.int64), "model": np.zeros((0, n_pixels)),
            "continuum": np.zeros((0, n_pixels)),
            "wavelength": regressor.cannon_.state_.wavelength}


def _best_fit(regressor, X: np.ndarray, fit, rows: np.ndarray, fitted: np.ndarray) -> dict:
    """The model spectra (:func:`best_fit_spectra`) of the ``fitted`` rows of a fit of ``X``
    (rows ``rows`` of the chunk's table)."""
    from skcannon.inference.nuisance import best_fit_spectra

    state = regressor.cannon_.state_
    model, continuum = best_fit_spectra(
        state, X[fitted, FLUX], X[fitted, IVAR], fit.labels[fitted], rv=fit.rv[fitted],
        continuum_order=regressor.nuisance_options()["continuum_order"])
    return {"row": np.asarray(rows)[fitted].astype(np.int64), "model": model,
            "continuum": continuum, "wavelength": state.wavelength}


def _raw_reasons(spectra: Sequence) -> np.ndarray:
    """:func:`unfittable_reasons` of every read spectrum (rows of each ``spectra[i].X``, in
    order), computed in cache-sized blocks of one spectrum length, as the preprocessing is
    (:func:`~skcannon.data.products.spectrum_blocks`)."""
    return np.concatenate([
        unfittable_reasons(_usable_flux(np.concatenate([spectra[i].X for i in block])))
        for block in spectrum_blocks(spectra)])


def _usable_flux(X: np.ndarray) -> np.ndarray:
    """Flux of ``X`` (n_spectra, 3, n_pixels) where usable (finite, inverse variance > 0),
    NaN elsewhere; +inf where the flux is finite but unusable (told apart from no flux)."""
    flux = X[:, FLUX]
    return np.where(_usable(X), flux, np.where(np.isfinite(flux), np.inf, np.nan))


def _usable(X: np.ndarray) -> np.ndarray:
    """Usable pixels of ``X`` (n_spectra, 3, n_pixels): finite flux, finite inverse variance
    > 0; shape (n_spectra, n_pixels)."""
    ivar = X[:, IVAR]
    return np.isfinite(X[:, FLUX]) & np.isfinite(ivar) & (ivar > 0)


def _any_usable(X: np.ndarray) -> np.ndarray:
    """Spectra of ``X`` (n_spectra, 3, n_pixels) with a usable pixel (:func:`_usable`),
    shape (n_spectra,)."""
    return _usable(X).any(axis=1)


def unfittable_reasons(flux: np.ndarray) -> np.ndarray:
    """Why each spectrum has nothing to fit, from its usable flux (:func:`_usable_flux`);
    "" where it has something.

    "Flux zero or negative" means the median of the usable pixels is <= 0. It is decided by
    counting, without a sort: with n usable pixels of which p are positive, the median is
    positive when 2p > n and not when 2p < n; only rows with 2p = n (even n, the median the
    mean of the largest non-positive and the smallest positive value) are decided by their
    median (exactly what ``np.nanmedian`` gives, tested).

    Parameters
    ----------
    flux : ndarray, shape (n_spectra, n_pixels)

    Returns
    -------
    ndarray of str, shape (n_spectra,)
    """
    usable = np.isfinite(flux)
    n_usable = usable.sum(axis=1)
    twice_positive = 2 * (usable & (flux > 0)).sum(axis=1)
    positive_median = twice_positive > n_usable
    tied = (twice_positive == n_usable) & (n_usable > 0)
    if tied.any():
        positive_median[tied] = np.nanmedian(np.where(usable, flux, np.nan)[tied], axis=1) > 0
    some = n_usable > 0
    reasons = np.full(len(flux), "", dtype=object)
    reasons[some & ~positive_median] = ("flux zero or negative (median of the usable pixels "
                                        "<= 0)")
    reasons[~some] = ("no usable pixel: every pixel masked or with a zero, negative or "
                      "non-finite error")
    reasons[np.isnan(flux).all(axis=1)] = "no finite flux (all NaN or infinite)"
    return reasons


def check_output_grid(model: Pipeline, source: object) -> None:
    """Refuse a fitted Pipeline whose preprocessing gives spectra on another grid than its
    Cannon's (the last step with a ``wavelength_``; :meth:`Cannon.check_wavelength`)."""
    grids = [step.wavelength_ for _, step in model.steps[:-1] if hasattr(step, "wavelength_")]
    model[-1].cannon_.check_wavelength(grids[-1] if grids else None, source)


def fill_unfitted(table: pd.DataFrame, dtypes: dict) -> pd.DataFrame:
    """Rows without a fit (bad files) get the schema's missing value of each column (NaN,
    False for flags, -1 for integer columns, 0 for ``FLAGS``; see
    :func:`skcannon.schema.missing_value`), so every column keeps the type ``dtypes`` gives it
    (a column absent from a part is added)."""
    declared = {c.name: c for c in schema.columns()}
    for name, dtype in dtypes.items():
        if name not in table:
            table[name] = np.nan
        if pd.api.types.is_bool_dtype(dtype):
            table[name] = table[name].astype("boolean").fillna(False).astype(bool)
        elif pd.api.types.is_integer_dtype(dtype):
            missing = schema.missing_value(declared[name]) if name in declared else -1
            table[name] = table[name].fillna(missing).astype(np.int64)
    return table
