"""Training on labels that are uncertain or missing: the training stars' labels as unknowns.

The classic Cannon trains as if the catalog labels were exact. With errors-in-variables
(``Cannon.fit(..., label_err=...)``) and with ``Cannon(missing_labels="infer")`` each training
star's labels l_n are unknowns with a Gaussian prior N(catalog_n, err_n^2) (a missing label: a
flat prior, precision 0; an exact label: error 0, held at its catalog value). Training then
maximizes the joint posterior

    ln p = sum_n [ ln p(f_n | l_n, theta, s^2) - 1/2 sum_i (l_ni - c_ni)^2 / e_ni^2 ]

by alternating (coordinate ascent, each step raising ln p):

1. model given labels: the ordinary per-pixel training (:mod:`skcannon.model.training`);
2. labels given model and prior: a batched Levenberg-Marquardt fit of every training star's
   labels at once (:func:`skcannon.inference.optimize.levenberg_marquardt`, no loop over stars).
   The prior needs no change to the optimizer: chi^2 is a quadratic form in the design vector v
   (:mod:`skcannon.inference.quadratic`), the linear terms of v are the scaled labels
   themselves, so the Gaussian prior is added exactly to G, h and c (:func:`add_label_prior`).

until no posterior label moves by more than :data:`CONVERGENCE_TOL` (scaled units, i.e.
standard deviations of the training labels) or ``max_iter`` alternations. Why alternation and
not an exact marginalization: the marginal likelihood over l_n has no closed form for a
polynomial model; the joint mode is what each half-step can reach exactly and cheaply, and
with spectra that constrain labels better than the catalog errors (APOGEE: ~20-50 K against
50-100 K) the mode is close to the marginal answer. The first model is trained on the catalog
labels (on the complete stars only when labels are missing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skcannon.errors import LabelError
from skcannon.inference.optimize import levenberg_marquardt
from skcannon.inference.quadratic import StarSystems, SufficientStatistics
from skcannon.labels import NULL_THRESHOLD

#: Converged when no training star's posterior label moves by more than this between two
#: alternations (scaled units: standard deviations of the training labels).
CONVERGENCE_TOL = 1e-3
#: Smallest label error used in a prior (scaled units): a label with error 0 is held at its
#: catalog value (precision 1 / tol^2, then set back exactly).
EXACT_LABEL_TOL = 1e-6
#: Label bounds of the posterior step: the current training range widened by this fraction of
#: its width on each side (posterior labels may leave the catalog's range).
POSTERIOR_MARGIN = 0.5
#: Polynomial order of the gauge step's map (:func:`fix_gauge`; 1: affine, the transformations
#: a polynomial model absorbs exactly; 2 converged faster but was less accurate in tests).
GAUGE_ORDER = 1
#: The gauge step (:func:`fix_gauge`) fits a label's affine map only with at least this many
#: stars per coefficient.
MIN_GAUGE_STARS_PER_TERM = 5


@dataclass
class LabelPosterior:
    """The training stars' posterior labels after alternating training.

    Attributes
    ----------
    labels : ndarray, shape (n_stars, n_labels)
        Posterior (joint-mode) labels, physical units.
    errors : ndarray, shape (n_stars, n_labels)
        Their 1-sigma uncertainties (spectrum and prior together; 0 for exact labels).
    n_iter : int
        Alternations run.
    converged : bool
        The last alternation moved no label by more than :data:`CONVERGENCE_TOL`.
    """

    labels: np.ndarray
    errors: np.ndarray
    n_iter: int
    converged: bool


def missing_entries(values: np.ndarray) -> np.ndarray:
    """Labels that are missing: NaN or a catalog null (<= ``NULL_THRESHOLD``, e.g. -9999).

    Parameters
    ----------
    values : ndarray, shape (n_stars, n_labels)

    Returns
    -------
    ndarray of bool, shape (n_stars, n_labels)
    """
    with np.errstate(invalid="ignore"):
        return np.isnan(values) | (values <= NULL_THRESHOLD)


def check_label_err(label_err, shape: tuple[int, int], names) -> np.ndarray:
    """Label errors as an array of ``shape`` (n_stars, n_labels), checked.

    Parameters
    ----------
    label_err : array_like, shape (n_stars, n_labels) or (n_labels,), or DataFrame
        1-sigma errors of the catalog labels (a DataFrame: columns ``NAME`` or ``NAME_ERR``
        per label). 0: exact; inf: unknown (no prior).
    shape : tuple of int
        (n_stars, n_labels) of the labels.
    names : sequence of str
        The label names.

    Returns
    -------
    ndarray, shape (n_stars, n_labels)

    Raises
    ------
    LabelError
        Wrong shape, a missing column, NaN or negative errors.
    """
    import pandas as pd

    if isinstance(label_err, pd.DataFrame):
        columns = [n if n in label_err else f"{n}_ERR" for n in names]
        absent = [c for c in columns if c not in label_err]
        if absent:
            raise LabelError(f"label_err lacks column(s) {', '.join(absent)}")
        label_err = label_err[columns].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    try:
        err = np.asarray(label_err, dtype=float)
    except (TypeError, ValueError) as exc:
        raise LabelError(f"label_err are not numbers ({exc})") from None
    if err.shape == (shape[1],):
        err = np.broadcast_to(err, shape)
    if err.shape != shape:
        raise LabelError(f"label_err must have shape {shape} (or ({shape[1]},)) like the "
                         f"labels; got {err.shape}")
    if np.isnan(err).any() or (err < 0).any():
        rows = np.flatnonzero((np.isnan(err) | (err < 0)).any(axis=1))
        raise LabelError(f"label_err: NaN or negative errors in {len(rows)} row(s), e.g. row "
                         f"{rows[0]}; use 0 for an exact label, inf for an unknown one")
    return np.array(err, dtype=float)


def add_label_prior(stats: SufficientStatistics, linear: list[int], mean: np.ndarray,
                    precision: np.ndarray) -> SufficientStatistics:
    """The quadratic form of chi^2 plus a Gaussian prior on the scaled labels, exactly.

    The prior sum_i P_i (l_i - mu_i)^2 is quadratic in the design vector's linear terms:
    with d = mu - v0[linear], it adds P to G's diagonal there, P d to h and sum P d^2 to c.

    Parameters
    ----------
    stats : SufficientStatistics
        chi^2 of every star (G (n, k, k), h (n, k), c (n,), centre (n, k)).
    linear : list of int
        Index in the design vector of each label's linear term (L entries).
    mean, precision : ndarray, shape (n_stars, L)
        Prior mean and precision (1 / error^2), scaled units; precision 0: no prior.

    Returns
    -------
    SufficientStatistics
        A new one (``stats`` is not changed).
    """
    G, h = stats.G.copy(), stats.h.copy()
    offset = np.where(precision > 0, mean - stats.centre[:, linear], 0.0)
    G[:, linear, linear] += precision
    h[:, linear] += precision * offset
    c = stats.c + np.sum(precision * offset ** 2, axis=1)
    return SufficientStatistics(G, h, c, stats.n_good, stats.centre)


def posterior_step(state, flux: np.ndarray, ivar: np.ndarray, start: np.ndarray,
                   catalog: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels given model and prior: every star's posterior mode at once (one batched
    Levenberg-Marquardt run, polished around its solution).

    Parameters
    ----------
    state : CannonState
        The model trained on the current labels (with its vectorizer).
    flux, ivar : ndarray, shape (n_stars, n_pixels)
    start : ndarray, shape (n_stars, L)
        Current labels (physical), the starting point.
    catalog, err : ndarray, shape (n_stars, L)
        Prior means and errors (physical); err inf or a NaN catalog value: no prior.

    Returns
    -------
    labels, errors : ndarray, shape (n_stars, L)
        Posterior modes and 1-sigma errors (physical units).
    """
    vectorizer, scales = state.vectorizer, state.scaling.scales
    linear = [vectorizer.terms.index((i,)) for i in range(vectorizer.n_labels)]
    known = np.isfinite(catalog) & np.isfinite(err)
    exact = known & (err == 0)
    err_scaled = np.maximum(np.where(known, err, 1.0) / scales, EXACT_LABEL_TOL)
    precision = np.where(known, 1.0 / err_scaled ** 2, 0.0)
    mean = state.scaling.scale(np.where(known, catalog, 0.0))
    lower, upper = (state.scaling.scale(b)[0] for b in state.label_bounds(POSTERIOR_MARGIN))
    systems = StarSystems(state.theta, state.s2, state.pixel_mask, flux, ivar,
                          state.error_factors)
    rows = np.arange(len(start))
    labels = np.clip(state.scaling.scale(start), lower, upper)
    for _ in range(2):          # the second run re-expands around the first's solution
        stats = add_label_prior(systems.around(vectorizer.design_matrix(labels)), linear,
                                mean, precision)
        labels, _, _ = levenberg_marquardt(stats, vectorizer, labels, rows, lower, upper)
    D = vectorizer.jacobian(labels)
    fisher = np.einsum("nkl,nkj,nji->nli", D, systems.G, D)
    fisher[:, np.arange(len(linear)), np.arange(len(linear))] += precision
    errors = np.sqrt(np.abs(np.einsum("nll->nl", np.linalg.pinv(fisher, hermitian=True))))
    physical = state.scaling.unscale(labels)
    physical[exact] = catalog[exact]
    return physical, np.where(exact, 0.0, errors * scales)


def fix_gauge(labels: np.ndarray, catalog: np.ndarray, err: np.ndarray) -> np.ndarray:
    """Labels mapped by the affine transformation that best matches the catalog.

    Spectra fix the labels only up to a smooth transformation (a model retrained on
    transformed labels describes the spectra as well); the catalog fixes it. Alternation alone
    moves along that direction only by ~(spectral error / catalog error)^2 per step, so each
    step also fits, per label i, c_i ~ a_i + B_i . l by least squares weighted by 1 / err_i^2
    over the stars whose label i is known and uncertain (the noise is in c, so the fit is
    unbiased: regression calibration), and applies it. Labels known exactly (err 0) keep
    their values.

    Parameters
    ----------
    labels : ndarray, shape (n_stars, L)
        Posterior labels (physical).
    catalog, err : ndarray, shape (n_stars, L)
        Catalog labels (NaN: missing) and their errors.

    Returns
    -------
    ndarray, shape (n_stars, L)
    """
    from skcannon.model.vectorizer import PolynomialVectorizer

    out = labels.copy()
    centred = (labels - labels.mean(axis=0)) / np.maximum(labels.std(axis=0), 1e-300)
    design = PolynomialVectorizer(labels.shape[1], order=GAUGE_ORDER).design_matrix(centred)
    for i in range(labels.shape[1]):          # a few labels, not stars or pixels
        use = np.isfinite(catalog[:, i]) & np.isfinite(err[:, i]) & (err[:, i] > 0)
        if use.sum() <= design.shape[1] * MIN_GAUGE_STARS_PER_TERM:
            continue
        weight = 1.0 / err[use, i]
        coef = np.linalg.lstsq(design[use] * weight[:, None], catalog[use, i] * weight,
                               rcond=None)[0]
        changed = ~(np.isfinite(err[:, i]) & (err[:, i] == 0) & np.isfinite(catalog[:, i]))
        out[changed, i] = design[changed] @ coef
    return out


def alternate(train, state_of, flux: np.ndarray, ivar: np.ndarray, catalog: np.ndarray,
              err: np.ndarray, *, max_iter: int) -> LabelPosterior:
    """Alternate model-given-labels and labels-given-model-and-prior to convergence.

    Parameters
    ----------
    train : callable
        ``train(labels, rows)`` trains the model on physical labels (m, L) of the stars
        ``rows`` (indices).
    state_of : callable
        ``state_of()`` -> the model's current CannonState.
    flux, ivar : ndarray, shape (n_stars, n_pixels)
    catalog : ndarray, shape (n_stars, L)
        Catalog labels, NaN where missing.
    err : ndarray, shape (n_stars, L)
        Their errors (0 exact, inf unknown).
    max_iter : int
        Most alternations.

    Returns
    -------
    LabelPosterior
    """
    complete = np.isfinite(catalog).all(axis=1)
    all_rows = np.arange(len(catalog))
    train(catalog[complete], all_rows[complete])
    labels = np.where(np.isfinite(catalog), catalog, np.nanmean(catalog, axis=0))
    errors = np.zeros_like(labels)
    converged, n_iter = False, 0
    for n_iter in range(1, max_iter + 1):     # noqa: B007 - the count is reported
        new, errors = posterior_step(state_of(), flux, ivar, labels, catalog, err)
        new = fix_gauge(new, catalog, err)
        change = np.max(np.abs(new - labels) / state_of().scaling.scales)
        labels = new
        train(labels, all_rows)
        if change < CONVERGENCE_TOL:
            converged = True
            break
    return LabelPosterior(labels, errors, n_iter, converged)
