"""The visits of one star fitted together: one label vector per star, a radial velocity (and
a continuum) per visit, and a visit-consistency statistic that flags RV-variable stars (binary
candidates).

chi^2_star = sum over its visits of the visit's chi^2 (:mod:`skcannon.inference.nuisance`:
model shifted by the visit's delta, continuum profiled per visit and chip). The parameters of a
star are its L scaled labels and one shift per visit; the Gauss-Newton system of every visit
(L + 1 parameters) is summed into the star's (L + V) system -- the label block added over
visits, each visit's shift in its own slot -- and solved for all stars at once (batched
Levenberg-Marquardt, stars padded to the largest number of visits). Starts: each visit fitted
alone (labels and RV), the star's labels their inverse-variance mean. The model's own scatter
(s^2, and the error factors U) is the same in every visit of a star, so it is counted once per
star: a star's V visits are each evaluated in the metric V x (noise / V + model), i.e. weights
1 / (sigma^2 + V s^2) -- for equal visits exactly the information of their coadd,
V / (sigma^2 + V s^2). The reported chi^2 and excess scatter use the visits' own metric.

Consistency: chi^2_RV = sum_j (v_j - <v>)^2 / (sigma_j^2 + floor^2) about the weighted mean,
V - 1 degrees of freedom; RV_VARIABLE where its p-value is below :data:`RV_VARIABLE_P` and the
visits span more than :data:`RV_VARIABLE_MIN_SPAN` km/s. ``visit_chi2_excess``: the joint fit's
spectral chi^2 minus the sum of the visits' own best chi^2 (large when one label vector cannot
describe the visits, e.g. a double-lined binary).
"""

from __future__ import annotations

import numpy as np

from skcannon.inference.doppler import SegmentGrid
from skcannon.inference.fitting import (
    LabelFit,
    _outside_training,
    _systematic,
    unlike_training_limit,
)
from skcannon.inference.nuisance import (
    MIN_PROMISE,
    RV_SYSTEMATIC,
    SHIFT_WINDOW,
    Nuisance,
    _evaluate,
    _move_back,
    _usable,
    check_nuisance_options,
    fit_labels_nuisance,
)
from skcannon.inference.optimize import LM_DOWN, LM_START, LM_UP, _solve_psd
from skcannon.stats import excess_scatter

#: A star is RV-variable when its visits' RVs are inconsistent at this p-value ...
RV_VARIABLE_P = 1e-4
#: ... and span more than this (km/s): below it, model and wavelength systematics dominate.
RV_VARIABLE_MIN_SPAN = 1.0
#: Systematic RV uncertainty added in quadrature to each visit's formal error in chi^2_RV
#: (km/s): the fit's scatter exceeds its formal errors by about this on emulator spectra
#: (docs/physics.rst).
RV_ERROR_FLOOR = 0.1


def visit_layout(visits, groups=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of stacked visits: the spectra (n_rows, 3, P), each row's star and its slot (the
    visit's index within its star).

    Parameters
    ----------
    visits : sequence of ndarray, each of shape (n_visits_i, 3, n_pixels)
        Or, with ``groups``, one array (n_rows, 3, n_pixels).
    groups : array_like of shape (n_rows,), default=None
        The star of each row (any hashable values; stars in order of first appearance).

    Returns
    -------
    X : ndarray, shape (n_rows, 3, n_pixels)
    star, slot : ndarray of int, shape (n_rows,)
    """
    import pandas as pd

    if groups is not None:
        X = np.asarray(visits, float)
        if len(groups) != len(X):
            raise ValueError(f"groups has {len(groups)} values for {len(X)} visit spectra")
        star = pd.factorize(pd.Series(list(groups)), sort=False)[0]
        slot = pd.Series(star).groupby(star).cumcount().to_numpy()
        return X, star, slot
    counts = np.array([len(v) for v in visits], dtype=int)
    if len(visits) == 0 or np.any(counts < 1):
        raise ValueError("visits: every star needs at least one visit spectrum")
    X = np.concatenate([np.asarray(v, float) for v in visits])
    star = np.repeat(np.arange(len(visits)), counts)
    slot = np.arange(len(X)) - np.repeat(np.cumsum(counts) - counts, counts)
    return X, star, slot


def fit_visits(state, flux: np.ndarray, ivar: np.ndarray, star: np.ndarray,
               slot: np.ndarray, *, rv_bounds=(-400.0, 400.0),
               continuum_order: int | None = None, n_starts: int = 4, margin: float = 0.1,
               seed: int = 0, max_iter: int = 100) -> LabelFit:
    """Joint label fit of every star's visits (see the module notes).

    Parameters
    ----------
    state : CannonState
    flux, ivar : ndarray, shape (n_rows, n_pixels)
        The visits, stacked (:func:`visit_layout`).
    star, slot : ndarray of int, shape (n_rows,)
        Each row's star and its index among the star's visits.
    rv_bounds : tuple of float, default=(-400.0, 400.0)
    continuum_order : int or None, default=None
    n_starts, margin, seed, max_iter
        As in :func:`skcannon.inference.fitting.fit_labels`.

    Returns
    -------
    LabelFit
        One row per star: labels, ``rv`` (the visits' weighted mean) and ``rv_err`` (its
        formal error with :data:`~skcannon.inference.nuisance.RV_SYSTEMATIC` added in
        quadrature once: the model's mismatch is the same in every visit),
        ``visit_rv``/``visit_rv_err`` (n_stars, max visits; NaN-padded; formal errors: what
        the visits' differences are judged by), ``n_visits``,
        ``rv_chi2``, ``rv_variable``, ``visit_chi2_excess``.
    """
    single = fit_labels_nuisance(state, flux, ivar, fit_rv=True, rv_bounds=rv_bounds,
                                 continuum_order=continuum_order, n_starts=n_starts,
                                 margin=margin, seed=seed, max_iter=max_iter)
    n_stars, n_labels = int(star.max()) + 1, len(state.label_names)
    options = check_nuisance_options(state.label_names, len(flux), fixed=None, fit_rv=True,
                                     rv_bounds=rv_bounds, continuum_order=continuum_order)
    grid = SegmentGrid.from_wavelength(state.wavelength, flux.shape[1])
    nuisance = Nuisance(grid, np.full((len(flux), n_labels), np.nan),
                        np.full((len(flux), n_labels), np.nan), True,
                        tuple(grid.shift(np.asarray(options["rv_bounds"]))),
                        None if continuum_order is None else grid.continuum_basis(
                            int(continuum_order)))
    start = _start_labels(state, single, star, n_stars)
    total = grid.shift(np.nan_to_num(single.rv))
    moved = np.round(total)
    flux, ivar = _move_back(grid, flux, ivar, moved.astype(int))
    d_lo, d_hi = nuisance.delta_bounds
    delta = total - moved
    window = (np.maximum(d_lo - moved, delta - SHIFT_WINDOW),
              np.minimum(d_hi - moved, delta + SHIFT_WINDOW))
    lower, upper = (state.scaling.scale(bound)[0] for bound in state.label_bounds(margin))
    coef = grid.spline_coefficients(state.theta)
    share = np.bincount(star, minlength=n_stars)[star].astype(float)   # the star's visits
    rows = (flux, ivar, _usable(state, nuisance, flux, ivar), star, slot, share)
    labels, delta, _, converged = _joint_search(state, nuisance, coef, rows, start, delta,
                                                (lower, upper), window, max_iter)
    return _visit_fit(state, nuisance, coef, rows, single, labels, delta + moved, converged,
                      (lower, upper))


def _start_labels(state, single: LabelFit, star: np.ndarray, n_stars: int) -> np.ndarray:
    """Each star's starting labels (scaled, (n_stars, L)): the inverse-variance mean of its
    visits' own fits (the training mean where none is usable)."""
    labels = state.scaling.scale(np.where(np.isfinite(single.labels), single.labels,
                                          state.scaling.offsets))
    sigma = single.formal_uncertainties / state.scaling.scales
    weight = np.where(np.isfinite(sigma) & (sigma > 0), 1.0 / np.where(sigma > 0, sigma,
                                                                      1.0) ** 2, 0.0)
    weight = np.where(weight.sum(axis=1, keepdims=True) > 0, weight, 1.0)
    total = np.stack([np.bincount(star, weight[:, i], n_stars)
                      for i in range(labels.shape[1])], axis=1)          # per label
    mean = np.stack([np.bincount(star, (weight * labels)[:, i], n_stars)
                     for i in range(labels.shape[1])], axis=1)
    return np.where(total > 0, mean / np.where(total > 0, total, 1.0), 0.0)


def _star_system(state, nuisance, coef: np.ndarray, rows: tuple, labels: np.ndarray,
                 delta: np.ndarray, jacobian: bool) -> tuple:
    """chi^2 per star (n_stars,) of scaled ``labels`` (n_stars, L) and row shifts ``delta``
    (n_rows,); with ``jacobian`` also the stars' gradient (n_stars, L + V), Gauss-Newton
    matrix (n_stars, L + V, L + V) and the rows' evaluation."""
    flux, ivar, usable, star, slot, share = rows
    n_stars, n_labels = labels.shape
    free = np.ones((len(flux), n_labels + 1), bool)
    out = _evaluate(state, nuisance, coef, np.c_[labels[star], delta],
                    (flux, ivar * share[:, None], usable, free), jacobian)
    for name, value in out.items():             # metric C = share x (noise / share + model)
        if name != "residual":
            out[name] = value / share.reshape((-1,) + (1,) * (value.ndim - 1))
    chi2 = np.bincount(star, out["chi2"], n_stars)
    if not jacobian:
        return chi2, None, None, out
    n_slots = int(slot.max()) + 1
    where = n_labels + slot
    g = np.zeros((n_stars, n_labels + n_slots))
    H = np.zeros((n_stars, n_labels + n_slots, n_labels + n_slots))
    np.add.at(g[:, :n_labels], star, out["g"][:, :n_labels])
    g[star, where] = out["g"][:, n_labels]
    np.add.at(H[:, :n_labels, :n_labels], star, out["H"][:, :n_labels, :n_labels])
    H[star, :n_labels, where] = out["H"][:, :n_labels, n_labels]
    H[star, where, :n_labels] = out["H"][:, n_labels, :n_labels]
    H[star, where, where] = out["H"][:, n_labels, n_labels]
    present = np.zeros((n_stars, n_slots), bool)
    present[star, slot] = True
    H[:, n_labels:, n_labels:] += np.eye(n_slots) * (~present)[:, :, None]
    return chi2, g, H, out


def _joint_search(state, nuisance, coef: np.ndarray, rows: tuple, labels: np.ndarray,
                  delta: np.ndarray, bounds: tuple, window: tuple, max_iter: int) -> tuple:
    """Batched Levenberg-Marquardt of every star's labels (scaled, within ``bounds``) and
    visit shifts (``delta`` (n_rows,) within ``window``); returns scaled labels (n_stars, L),
    row shifts (n_rows,), chi^2 and converged (n_stars,)."""
    star, slot = rows[3], rows[4]
    n_stars, n_labels = labels.shape
    (lower, upper), (low_d, high_d) = bounds, window
    labels, delta = np.clip(labels, lower, upper), delta.copy()
    chi2 = _star_system(state, nuisance, coef, rows, labels, delta, False)[0]
    damping = np.full(n_stars, LM_START)
    done = np.zeros(n_stars, bool)
    for _ in range(max_iter):
        if done.all():
            break
        _, g, H, _ = _star_system(state, nuisance, coef, rows, labels, delta, True)
        promise = np.einsum("nq,nq->n", g, _solve_psd(H, g))
        diag = np.maximum(np.einsum("nqq->nq", H), 1e-12)
        step = _solve_psd(H + damping[:, None, None] * np.eye(H.shape[1]) * diag[:, :, None], g)
        step[done] = 0.0
        trial_labels = np.clip(labels + step[:, :n_labels], lower, upper)
        trial_delta = np.clip(delta + step[star, n_labels + slot], low_d, high_d)
        trial = _star_system(state, nuisance, coef, rows, trial_labels, trial_delta, False)[0]
        better = (trial < chi2) & ~done
        labels[better], chi2[better] = trial_labels[better], trial[better]
        delta[better[star]] = trial_delta[better[star]]
        damping *= np.where(better, LM_DOWN, LM_UP)
        done |= (promise <= MIN_PROMISE) | (damping > 1e10)
    return labels, delta, chi2, done & np.isfinite(chi2)


def _visit_fit(state, nuisance, coef: np.ndarray, rows: tuple, single: LabelFit,
               labels: np.ndarray, delta: np.ndarray, converged: np.ndarray,
               bounds: tuple) -> LabelFit:
    """The stars' :class:`LabelFit` at the joint solution (see :func:`fit_visits`):
    covariance from the joint metric, chi^2 and excess scatter in the visits' own;
    ``bounds``: the scaled lower and upper label bounds."""
    star, slot = rows[3], rows[4]
    n_stars, n_labels = labels.shape
    H = _star_system(state, nuisance, coef, rows, labels, delta, True)[2]
    chi2, _, _, out = _star_system(state, nuisance, coef, (*rows[:5], np.ones(len(star))),
                                   labels, delta, False)       # the visits' own metric
    covariance = np.full_like(H, np.nan)
    ok = np.all(np.isfinite(H), axis=(1, 2))
    covariance[ok] = np.linalg.pinv(H[ok], hermitian=True)
    n_slots, scales = H.shape[1] - n_labels, state.scaling.scales
    visit_rv = np.full((n_stars, n_slots), np.nan)
    visit_err = np.full((n_stars, n_slots), np.nan)
    visit_rv[star, slot] = nuisance.grid.velocity(delta)
    visit_err[star, slot] = np.sqrt(covariance[star, n_labels + slot, n_labels + slot]) * (
        nuisance.grid.velocity_per_pixel(delta))
    n_visits = np.bincount(star, minlength=n_stars)
    n_linear = 0 if nuisance.basis is None else nuisance.basis.shape[1]
    n_good = np.bincount(star, rows[2].sum(axis=1), n_stars).astype(int)
    dof = np.maximum(n_good - n_labels - n_visits * (1 + n_linear), 1)
    excess = _excess(out, star, slot, (n_stars, n_slots), dof)
    physical = state.scaling.unscale(labels)
    limit = unlike_training_limit(state.s2[state.pixel_mask])
    lower, upper = bounds
    tol = 1e-6 * (upper - lower)
    mean, mean_err, rv_chi2, variable = rv_consistency(visit_rv, visit_err, n_visits)
    return LabelFit(
        labels=physical, covariance=covariance[:, :n_labels, :n_labels] * scales[None, :, None]
        * scales[None, None, :], chi2=chi2, reduced_chi2=chi2 / dof, n_good=n_good,
        converged=converged,
        on_bound=np.any((labels <= lower + tol) | (labels >= upper - tol), axis=1),
        outside_training=_outside_training(state, physical),
        starts_disagree=np.zeros(n_stars, bool), best_start=np.zeros(n_stars, int),
        second_chi2=np.full(n_stars, np.inf), excess_scatter=excess,
        unlike_training=excess > limit, label_names=tuple(state.label_names),
        training_range=np.asarray(state.label_range), unlike_limit=limit,
        systematic=_systematic(state, n_stars), rv=mean,
        rv_err=np.hypot(mean_err, RV_SYSTEMATIC),               # common to the visits
        n_visits=n_visits, rv_chi2=rv_chi2, rv_variable=variable,
        visit_chi2_excess=chi2 - np.bincount(star, single.chi2, n_stars),
        visit_rv=visit_rv, visit_rv_err=visit_err)


def _excess(out: dict, star: np.ndarray, slot: np.ndarray, shape: tuple,
            dof: np.ndarray) -> np.ndarray:
    """The excess scatter of each star (n_stars,) from its visits' residuals and weights
    (``out`` of :func:`_star_system`); ``shape``: (n_stars, max visits)."""
    squared = np.zeros((*shape, out["residual"].shape[1]))
    weights = np.zeros_like(squared)
    squared[star, slot], weights[star, slot] = out["residual"] ** 2, out["weight"]
    return excess_scatter(squared.reshape(shape[0], -1), weights.reshape(shape[0], -1), dof)


def rv_consistency(visit_rv: np.ndarray, visit_rv_err: np.ndarray,
                   n_visits: np.ndarray) -> tuple:
    """Do a star's visit RVs agree?

    Parameters
    ----------
    visit_rv, visit_rv_err : ndarray, shape (n_stars, max visits)
        Per-visit RVs and formal errors (km/s), NaN-padded.
    n_visits : ndarray of int, shape (n_stars,)

    Returns
    -------
    mean, mean_err : ndarray, shape (n_stars,)
        Inverse-variance mean RV and its error (km/s).
    rv_chi2 : ndarray, shape (n_stars,)
        chi^2 of the visits about the mean, each error with :data:`RV_ERROR_FLOOR` added in
        quadrature (n_visits - 1 degrees of freedom).
    variable : ndarray of bool, shape (n_stars,)
        p-value of ``rv_chi2`` below :data:`RV_VARIABLE_P` and a span above
        :data:`RV_VARIABLE_MIN_SPAN` km/s.
    """
    from scipy.stats import chi2 as chi2_distribution

    usable = np.isfinite(visit_rv) & np.isfinite(visit_rv_err) & (visit_rv_err > 0)
    weight = np.where(usable, 1.0 / np.where(usable, visit_rv_err, 1.0) ** 2, 0.0)
    total = weight.sum(axis=1)
    mean = np.where(total > 0, np.sum(weight * np.where(usable, visit_rv, 0.0), axis=1)
                    / np.where(total > 0, total, 1.0), np.nan)
    spread = np.where(usable, (np.where(usable, visit_rv, 0.0) - mean[:, None]) ** 2
                      / (np.where(usable, visit_rv_err, 1.0) ** 2 + RV_ERROR_FLOOR ** 2), 0.0)
    rv_chi2 = spread.sum(axis=1)
    p_value = chi2_distribution.sf(rv_chi2, np.maximum(usable.sum(axis=1) - 1, 1))
    span = np.where(usable.any(axis=1), np.max(np.where(usable, visit_rv, -np.inf), axis=1)
                    - np.min(np.where(usable, visit_rv, np.inf), axis=1), 0.0)
    variable = (p_value < RV_VARIABLE_P) & (span > RV_VARIABLE_MIN_SPAN) & (n_visits > 1)
    return mean, np.where(total > 0, 1.0 / np.sqrt(np.where(total > 0, total, 1.0)), np.nan), \
        rv_chi2, variable
