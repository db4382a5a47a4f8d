"""A survey chunk fitted visit by visit (``label_survey(..., visits=True)``, ``skcannon survey
--visits``): every apStar file's individual visits (rows 2+ of a DR17 multi-visit file,
:func:`skcannon.apogee.apstar_visits.read_apstar_visits`; a single-visit file's one row)
preprocessed as the combined spectra are and fitted jointly per star
(:meth:`Cannon.infer_visits`: one label vector, one RV per visit, ``RV_VARIABLE``), one row
per file. A file of another product is a row with ``STATUS = "bad file"`` saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from skcannon.apogee.apstar_visits import read_apstar_visits
from skcannon.data.product_apstar import NAME as APSTAR
from skcannon.data.products import ProductSpectra, prepare_for_model
from skcannon.errors import SkcannonError
from skcannon.survey.chunk import (
    BAD_FILE,
    FITTED,
    UNFITTED,
    _usable_flux,
    check_output_grid,
    fill_unfitted,
    read_inputs,
    unfittable_reasons,
)
from skcannon.survey.inputs import SurveyInput


def label_visits_chunk(inputs: Sequence[SurveyInput | str], model: Pipeline, *,
                       product: str | None = None, n_starts: int = 4, seed: int = 0
                       ) -> pd.DataFrame:
    """Labels of the stars of ``inputs`` (apStar files), each fitted from its visits jointly.

    Parameters
    ----------
    inputs : sequence of SurveyInput or str
    model : Pipeline  fitted: preprocessing, then a CannonRegressor whose Cannon has a
        wavelength grid (the visits' RVs are fitted; its ``rv_max`` and ``continuum_order``
        are used)
    product : str or None, default=None  as :func:`read_inputs`
    n_starts, seed : int  of the fit

    Returns
    -------
    DataFrame, one row per file, in input order: the columns of :func:`read_inputs`, then
    those of :meth:`LabelFit.to_frame` (``N_VISITS``, ``RV_CHI2``, ``RV_VARIABLE`` ...; RV is
    the mean residual velocity about the file's rest frame).
    """
    preprocessor, regressor = model[:-1], model[-1]
    check_output_grid(model, "the preprocessed spectra")
    table, spectra = read_inputs(inputs, product=product)
    rows = np.split(table.index[(table.STATUS == FITTED).to_numpy()],
                    np.cumsum([len(s) for s in spectra])[:-1]) if spectra else []
    stars, sets = [], []
    for found, where in zip(spectra, rows, strict=True):        # per file: reading
        try:
            if found.product != APSTAR:
                raise SkcannonError(f"{found.path}: --visits reads the visit rows of apStar "
                                    f"files; this is {found.product}")
            sets.append(star_visits(found))
        except SkcannonError as exc:
            table.loc[where, ["STATUS", "PROBLEM"]] = [BAD_FILE, str(exc)]
            continue
        stars.append(where[0])
    if not sets:
        return table
    return _fit_stars(table, regressor, prepare_for_model(sets, preprocessor),
                      np.repeat(np.arange(len(sets)), [len(s) for s in sets]),
                      np.asarray(stars), {"n_starts": n_starts, "seed": seed})


def star_visits(found: ProductSpectra) -> ProductSpectra:
    """The visit spectra of a file: an apStar (or asStar) file's individual visits (rows 2+ of
    a multi-visit file, :func:`read_apstar_visits`, in the star's rest frame; its combined row
    when it has one visit); the spectra of any other product as they are (each one visit).

    Parameters
    ----------
    found : ProductSpectra  a file as :func:`read_inputs` read it

    Returns
    -------
    ProductSpectra
        One spectrum per visit (an apStar file's: its APOGEE_ID on every visit, the header's
        visit S/N, no SHA-256).

    Raises
    ------
    BadFileError
        An apStar file whose visit rows do not match its NVISITS.
    """
    if found.product != APSTAR:
        return found
    visits = read_apstar_visits(found.path)
    return replace(found, ids=[found.ids[0]] * len(visits), snr=visits.snr, X=visits.X,
                   sha256="")


def _fit_stars(table: pd.DataFrame, regressor, X: np.ndarray, star: np.ndarray,
               rows: np.ndarray, options: dict) -> pd.DataFrame:
    """Fit the visits ``X`` of stars ``star`` (table rows ``rows``) jointly; visits with nothing
    to fit are left out, stars with none left are unfitted."""
    usable = unfittable_reasons(_usable_flux(X)) == ""
    has = np.zeros(len(rows), bool)
    has[star[usable]] = True
    unfitted = {int(r): "no visit with a usable pixel" for r in rows[~has]}
    if has.any():
        nuisance = regressor.nuisance_options()
        fit = regressor.cannon_.infer_visits(
            X[usable], groups=star[usable], rv_bounds=nuisance["rv_bounds"],
            continuum_order=nuisance["continuum_order"], margin=regressor.margin, **options)
        fitted = fit.to_frame()
        fitted.index = rows[has]
        table = fill_unfitted(pd.concat([table, fitted.reindex(table.index)], axis=1),
                              dict(fitted.dtypes))
        bad = ~np.all(np.isfinite(fit.labels), axis=1)
        unfitted.update({int(r): "the fit gave non-finite labels" for r in rows[has][bad]})
    for row, reason in unfitted.items():
        table.loc[row, ["STATUS", "PROBLEM"]] = [UNFITTED, reason]
    return table
