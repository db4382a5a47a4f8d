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
from skcannon.spectra import FLUX, IVAR
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
                       product: str | None = None, n_starts: int = 4, seed: int = 0,
                       model_spectra: bool = False):
    """Labels of the stars of ``inputs`` (apStar files), each fitted from its visits jointly.

    Parameters
    ----------
    inputs : sequence of SurveyInput or str
    model : Pipeline  fitted: preprocessing, then a CannonRegressor whose Cannon has a
        wavelength grid (the visits' RVs are fitted; its ``rv_max`` and ``continuum_order``
        are used)
    product : str or None, default=None  as :func:`read_inputs`
    n_starts, seed : int  of the fit
    model_spectra : bool, default=False
        Also return one best-fit model spectrum per fitted visit: the star's labels, shifted
        by the visit's RV, times the visit's continuum (:func:`visit_model_spectra`).

    Returns
    -------
    table : DataFrame, one row per file, in input order
        The columns of :func:`read_inputs`, then those of :meth:`LabelFit.to_frame`
        (``N_VISITS``, ``RV_CHI2``, ``RV_VARIABLE`` ...; RV is the mean residual velocity
        about the file's rest frame).
    spectra : dict, only with ``model_spectra``
        As :func:`skcannon.survey.chunk.label_chunk` gives it, one entry per visit (``row``:
        its file's row of ``table``), with ``visit`` (n,): the visit's index in its file
        (apStar row 2 + visit of a multi-visit file).
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
        return (table, _no_visit_spectra(regressor)) if model_spectra else table
    table, saved = _fit_stars(table, regressor, prepare_for_model(sets, preprocessor),
                              np.repeat(np.arange(len(sets)), [len(s) for s in sets]),
                              np.asarray(stars), {"n_starts": n_starts, "seed": seed},
                              model_spectra)
    return (table, saved) if model_spectra else table


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
               rows: np.ndarray, options: dict, model_spectra: bool = False) -> tuple:
    """Fit the visits ``X`` of stars ``star`` (table rows ``rows``) jointly; visits with nothing
    to fit are left out, stars with none left are unfitted. Returns the table and (with
    ``model_spectra``) the visits' model spectra, else None."""
    usable = unfittable_reasons(_usable_flux(X)) == ""
    has = np.zeros(len(rows), bool)
    has[star[usable]] = True
    unfitted = {int(r): "no visit with a usable pixel" for r in rows[~has]}
    saved = _no_visit_spectra(regressor) if model_spectra else None
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
        if model_spectra:
            visit = np.arange(len(star)) - np.searchsorted(star, star)   # index in its file
            saved = visit_model_spectra(regressor.cannon_.state_, X[usable], fit,
                                        nuisance["continuum_order"])
            keep = ~bad[saved["star"]]
            saved = {"row": rows[star[usable]][keep].astype(np.int64),
                     "visit": visit[usable][keep].astype(np.int64),
                     "model": saved["model"][keep], "continuum": saved["continuum"][keep],
                     "wavelength": regressor.cannon_.state_.wavelength}
    for row, reason in unfitted.items():
        table.loc[row, ["STATUS", "PROBLEM"]] = [UNFITTED, reason]
    return table, saved


def _no_visit_spectra(regressor) -> dict:
    """The visit model spectra of a chunk with no fitted visit."""
    n_pixels = regressor.cannon_.theta_.shape[0]
    return {"row": np.zeros(0, np.int64), "visit": np.zeros(0, np.int64),
            "model": np.zeros((0, n_pixels)), "continuum": np.zeros((0, n_pixels)),
            "wavelength": regressor.cannon_.state_.wavelength}


def visit_model_spectra(state, X: np.ndarray, fit, continuum_order: int | None) -> dict:
    """The best-fit model spectrum of every visit of a joint visit fit: its star's labels,
    shifted by the visit's own RV, times the visit's continuum profiled against it
    (:func:`skcannon.inference.nuisance.best_fit_spectra`).

    Parameters
    ----------
    state : the Cannon's inference state (``Cannon.state_``)
    X : ndarray, shape (n_rows, 3, n_pixels)
        The visits that were fitted, stacked in the order given to
        :meth:`Cannon.infer_visits` (with ``groups``: each star's visits in order).
    fit : LabelFit  the joint fit (one row per star, ``visit_rv`` (n_stars, max visits))
    continuum_order : int or None  the order the fit used

    Returns
    -------
    dict
        ``star`` (n_rows,): each visit's row of ``fit``; ``model`` and ``continuum``
        (n_rows, n_pixels).
    """
    from skcannon.inference.nuisance import best_fit_spectra

    n_visits = np.asarray(fit.n_visits, int)
    star = np.repeat(np.arange(len(n_visits)), n_visits)
    slot = np.arange(len(star)) - np.repeat(np.cumsum(n_visits) - n_visits, n_visits)
    if len(star) != len(X):
        raise ValueError(f"the fit has {len(star)} visits; X has {len(X)} rows")
    model, continuum = best_fit_spectra(state, X[:, FLUX], X[:, IVAR], fit.labels[star],
                                        rv=fit.visit_rv[star, slot],
                                        continuum_order=continuum_order)
    return {"star": star, "model": model, "continuum": continuum}
