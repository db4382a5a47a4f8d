"""Label fits with more than the labels: labels held fixed, a radial velocity fitted jointly
and a per-segment (chip) continuum polynomial profiled out.

chi^2 = sum_p w_p (f_p - C_p(c) M_p(l, delta))^2 with M the model shifted by delta pixels
(:mod:`skcannon.inference.doppler`), C = sum_j c_j B_j(p) a polynomial of order k on each
segment and w = 1 / (sigma^2 + s^2) (s^2 shifted with the model). The continuum's linear
coefficients c are solved for analytically inside every evaluation (weighted least squares per
star and segment, batched): the nonlinear search runs over the free labels and delta only, and
its Gauss-Newton matrix is the Schur complement that marginalizes c (variable projection).

The search is a batched Levenberg-Marquardt over every star at once (chunks of
:data:`CHUNK_STARS` to bound memory), started from the classic fit (:func:`fit_labels`); with a
radial velocity, from a coarse start: the best whole-pixel shift of the classic fit's model
over the velocity bounds, then the classic multi-start fit again on the spectra moved back by
that whole number of pixels (an exact move), so that the labels start near their minimum too.
With error factors U the noise covariance is diag(sigma^2 + s^2) + U U^T (Woodbury, as in the
classic fit; U at the pixels of the spectra moved by whole pixels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skcannon.inference.doppler import SegmentGrid, apply_shift
from skcannon.inference.fitting import LabelFit, _label_fit, fit_labels
from skcannon.inference.optimize import LM_DOWN, LM_START, LM_UP, _solve_psd
from skcannon.inference.options import (  # noqa: F401 - part of this module's interface
    DEFAULT_RV_BOUNDS,
    check_nuisance_options,
)
from skcannon.inference.quadratic import factor_system
from skcannon.stats import excess_scatter

#: Stars per batch of the pixel-space search (memory ~ CHUNK_STARS x n_pixels x parameters).
CHUNK_STARS = 256
#: How far (pixels) the fine shift may move from the coarse whole-pixel start.
SHIFT_WINDOW = 2.0
#: Systematic RV uncertainty (km/s) added in quadrature to the formal ``rv_err``: the RV
#: offset a model's mismatch with the star's true spectrum leaves, the same over the whole
#: spectrum (the spread of the RVs of a spectrum's 24 pieces does not reveal it) and not in
#: the noise model. Measured on BinSpec emulator spectra (not the Cannon's form) shifted by
#: whole pixels (exact), 4-label quadratic models trained on 150, 400 and 1000 SNR-200
#: spectra: 0.017-0.032 km/s per star beyond the noise (pulls 1.1-1.6 at SNR 250 with the
#: formal errors alone; docs/physics.rst). A real model's mismatch with real stars is larger.
RV_SYSTEMATIC = 0.03
#: Converged when a Gauss-Newton step promises to lower chi^2 by less than this (a 1-sigma
#: change of a parameter changes chi^2 by 1).
MIN_PROMISE = 1e-4


@dataclass(frozen=True)
class Nuisance:
    """What is fitted besides the labels.

    Attributes
    ----------
    grid : SegmentGrid
    fixed : ndarray, shape (n_stars, L)
        Scaled values of fixed labels, NaN where a label is free.
    given : ndarray, shape (n_stars, L)
        The same in physical units, as given.
    fit_rv : bool
    delta_bounds : tuple of float
        Bounds of the shift (pixels).
    basis : ndarray, shape (n_pixels, J) or None
        The continuum polynomials (None: no continuum).
    """

    grid: SegmentGrid
    fixed: np.ndarray
    given: np.ndarray
    fit_rv: bool
    delta_bounds: tuple
    basis: np.ndarray | None


def fit_labels_nuisance(state, flux: np.ndarray, ivar: np.ndarray, *, fixed=None,
                        fit_rv: bool = False, rv_bounds=DEFAULT_RV_BOUNDS,
                        continuum_order: int | None = None, n_starts: int = 4,
                        margin: float = 0.1, seed: int = 0, max_iter: int = 100) -> LabelFit:
    """Labels with fixed labels, a radial velocity and a continuum (see the module notes).

    Parameters
    ----------
    state : CannonState
        A fitted Cannon's learned state (as for :func:`fit_labels`).
    flux, ivar : ndarray, shape (n_stars, n_pixels)
    fixed : ndarray, shape (n_stars, L), default=None
        Physical values of labels held fixed; NaN where a label is fitted.
    fit_rv : bool, default=False
        Fit a radial velocity (needs the model's wavelength grid, log-linear per segment).
    rv_bounds : tuple of float, default=(-400.0, 400.0)
        Velocity bounds, km/s (+ = redshift).
    continuum_order : int or None, default=None
        Order of the continuum polynomial per segment (None: no continuum).
    n_starts, margin, seed, max_iter
        As in :func:`fit_labels`.

    Returns
    -------
    LabelFit
        With ``rv``/``rv_err`` (NaN when not fitted) and ``fixed`` set.
    """
    n_stars, n_labels = flux.shape[0], len(state.label_names)
    grid = SegmentGrid.from_wavelength(state.wavelength if (fit_rv or continuum_order is not None)
                                       else None, flux.shape[1])
    if fit_rv and not np.isfinite(grid.dlog):
        raise ValueError("fit_rv needs a model with a wavelength grid (fit it with the "
                         "spectra's wavelength)")
    fixed_phys = np.full((n_stars, n_labels), np.nan) if fixed is None else fixed
    nuisance = Nuisance(grid, state.scaling.scale(fixed_phys), fixed_phys, bool(fit_rv),
                        tuple(grid.shift(np.asarray(rv_bounds, float))) if fit_rv else (0, 0),
                        None if continuum_order is None else grid.continuum_basis(
                            int(continuum_order)))
    options = {"n_starts": n_starts, "margin": margin, "seed": seed, "max_iter": max_iter}
    base = fit_labels(state, flux, ivar, **options)
    moved = np.zeros(n_stars)
    if fit_rv:
        moved = _coarse_shift(state, nuisance, flux, ivar, base.labels)
        flux, ivar = _move_back(grid, flux, ivar, moved.astype(int))
        base = fit_labels(state, flux, ivar, **options)
    start = state.scaling.scale(np.where(np.isfinite(base.labels), base.labels,
                                         state.scaling.offsets))
    start = np.where(np.isfinite(nuisance.fixed), nuisance.fixed, start)
    lower, upper = (state.scaling.scale(bound)[0] for bound in state.label_bounds(margin))
    d_lo, d_hi = nuisance.delta_bounds
    window = (np.maximum(d_lo - moved, -SHIFT_WINDOW), np.minimum(d_hi - moved, SHIFT_WINDOW))
    parts = []
    for a in range(0, n_stars, CHUNK_STARS):                    # memory bound, not a star loop
        rows = slice(a, a + CHUNK_STARS)
        parts.append(_search(state, nuisance, flux[rows], ivar[rows], start[rows],
                             (window[0][rows], window[1][rows]), (lower, upper), max_iter,
                             rows))
    merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    merged["moved"] = moved
    return _nuisance_fit(state, nuisance, flux, ivar, base, merged, lower, upper)


def _integer_source(grid: SegmentGrid, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel p - shift (rows of ``shift`` (m,) whole pixels) and whether it lies in p's
    segment: index (m, P) (clipped) and inside (m, P)."""
    pixels = np.arange(grid.segment.size)
    source = pixels[None, :] - np.asarray(shift, int)[:, None]
    lo, hi = grid.start[grid.segment], grid.stop[grid.segment]
    inside = (source >= lo) & (source < hi)
    return np.clip(source, lo, hi - 1), inside


def _coarse_shift(state, nuisance: Nuisance, flux: np.ndarray, ivar: np.ndarray,
                  labels: np.ndarray) -> np.ndarray:
    """The whole-pixel shift within the bounds that best matches each star's spectrum to its
    classic-fit model (least chi^2 per pixel used), shape (n_stars,) float.

    chi^2(s) = sum_p w_p (f_p - m_{p-s})^2 over pixels whose p - s lies in p's segment, for
    every s at once: three cross-correlations per segment (FFT), with w_p = ivar_p g_{p-s},
    g = 1 / (1 + ivar_typical s^2) of the model pixel (separable in p and p - s)."""
    values = np.where(np.isfinite(labels), labels, state.scaling.offsets)
    model = state.vectorizer.design_matrix(state.scaling.scale(values)) @ state.theta.T
    good = (ivar > 0) & np.isfinite(ivar) & np.isfinite(flux)
    ivar = np.where(good, ivar, 0.0)
    flux = np.where(good, flux, 0.0)
    typical = np.median(np.where(good, ivar, np.nan), axis=1, keepdims=True)
    # model-side weight: the pixel's s^2 against the star's typical noise (separable)
    trust = state.pixel_mask / (1.0 + np.nan_to_num(typical) * state.s2[None, :])
    lo, hi = nuisance.delta_bounds
    shifts = np.arange(int(np.ceil(lo)), int(np.floor(hi)) + 1)
    chi2 = np.zeros((len(flux), len(shifts)))
    count = np.zeros_like(chi2)
    grid = nuisance.grid
    for a, b in zip(grid.start, grid.stop, strict=True):        # segments (3 chips)
        g, m = trust[:, a:b], model[:, a:b]
        pairs = ((ivar[:, a:b] * flux[:, a:b] ** 2, g, 1.0),
                 (ivar[:, a:b] * flux[:, a:b], g * m, -2.0), (ivar[:, a:b], g * m * m, 1.0))
        for data, template, factor in pairs:
            chi2 += factor * _correlate(data, template, shifts)
        count += _correlate(good[:, a:b].astype(float),
                            np.broadcast_to(state.pixel_mask[a:b].astype(float), g.shape),
                            shifts)
    score = np.where(count > 0, chi2 / np.maximum(count, 1.0), np.inf)
    return shifts[np.argmin(score, axis=1)].astype(float)


def _correlate(data: np.ndarray, template: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """c(s) = sum_q data[q + s] template[q] (zero outside the arrays) for every ``shifts``
    value: ``data`` (n, P), ``template`` (P,) or (n, P); shape (n, len(shifts))."""
    size = data.shape[-1]
    length = 1 << int(np.ceil(np.log2(2 * size)))
    product = np.fft.rfft(data, length) * np.conj(np.fft.rfft(template, length))
    full = np.fft.irfft(product, length)
    inside = np.abs(shifts) < size
    out = np.zeros((data.shape[0], len(shifts)))
    out[:, inside] = full[:, shifts[inside] % length]
    return out


def _move_back(grid: SegmentGrid, flux: np.ndarray, ivar: np.ndarray,
               shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spectra moved back by whole-pixel ``shift`` (n,) into the rest frame: rest pixel p is
    observed pixel p + shift (ivar 0 where that leaves p's segment)."""
    index, inside = _integer_source(grid, -np.asarray(shift, int))
    moved_flux = np.take_along_axis(flux, index, axis=1)
    moved_ivar = np.where(inside, np.take_along_axis(ivar, index, axis=1), 0.0)
    return moved_flux, moved_ivar


def _model(state, nuisance: Nuisance, coef: np.ndarray, labels: np.ndarray,
           delta: np.ndarray, jacobian: bool) -> tuple:
    """Model spectra (m, P) at scaled ``labels`` (m, L) shifted by ``delta`` (m,), their s^2
    (m, P) and, with ``jacobian``, d model / d(labels, delta) (m, Q, P), else None."""
    vectorizer = state.vectorizer
    channels = (vectorizer.design_matrix(labels) @ coef.T)[:, None, :]
    if jacobian:
        derivative = np.einsum("mkl,pk->mlp", vectorizer.jacobian(labels), coef)
        channels = np.concatenate([channels, derivative], axis=1)
    if not nuisance.fit_rv:
        s2 = np.broadcast_to(state.s2, (len(labels), state.s2.size))
        return channels[:, 0], s2, (channels[:, 1:] if jacobian else None)
    weight, dweight = nuisance.grid.shift_weights(delta)
    shifted = apply_shift(channels, weight)
    s2 = np.maximum(apply_shift(np.broadcast_to(state.s2, (len(labels), 1, state.s2.size)),
                                weight)[:, 0], 0.0)
    if not jacobian:
        return shifted[:, 0], s2, None
    ddelta = apply_shift(channels[:, :1], dweight)
    return shifted[:, 0], s2, np.concatenate([shifted[:, 1:], ddelta], axis=1)


class _Metric:
    """Inner products a^T C^-1 b of many rows at once, C = W^-1 + U U^T (the model's error
    factors U by the Woodbury identity, as :class:`~skcannon.inference.quadratic.StarSystems`;
    W only without them).

    Parameters
    ----------
    weight : ndarray, shape (m, P)  1 / (sigma^2 + s^2), 0 at unused pixels
    factors : ndarray, shape (P, r), or None
    """

    def __init__(self, weight: np.ndarray, factors: np.ndarray | None) -> None:
        self.weight = weight
        self.factors = None if factors is None or factors.shape[1] == 0 else factors
        if self.factors is not None:
            self.M = factor_system(weight, self.factors)               # (m, r, r)

    def inner(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """a^T C^-1 b for ``a`` (m, P, i) and ``b`` (m, P, j): shape (m, i, j)."""
        out = np.einsum("mpi,mpj->mij", self.weight[:, :, None] * a, b)
        if self.factors is None:
            return out
        ua = np.einsum("pr,mpi->mri", self.factors, self.weight[:, :, None] * a)
        ub = np.einsum("pr,mpj->mrj", self.factors, self.weight[:, :, None] * b)
        return out - np.einsum("mri,mrj->mij", ua, np.linalg.solve(self.M, ub))


def _profile(model: np.ndarray, metric: _Metric, flux: np.ndarray,
             basis: np.ndarray | None) -> tuple:
    """The continuum (m, P) that best scales ``model`` to ``flux`` per segment (generalized
    least squares, batched) and (A, N) of its normal equations (None without a continuum)."""
    if basis is None:
        return np.ones_like(model), None
    A = model[:, :, None] * basis[None]                        # (m, P, J)
    N = metric.inner(A, A)
    ridge = 1e-12 * np.einsum("mjj->m", N)[:, None, None] + 1e-300
    N = N + ridge * np.eye(N.shape[1])
    coefficients = _solve_psd(N, metric.inner(A, flux[:, :, None])[:, :, 0])
    return coefficients @ basis.T, (A, N)


def _usable(state, nuisance: Nuisance, flux: np.ndarray, ivar: np.ndarray) -> np.ndarray:
    """Pixels the search may use (m, P): good data where the model is trained and, with a
    radial velocity, where a shifted model can be read (:meth:`SegmentGrid.reachable`), so
    that the pixel set does not change during the search."""
    good = (ivar > 0) & np.isfinite(ivar) & np.isfinite(flux)
    if not nuisance.fit_rv:
        return good & state.pixel_mask[None, :]
    return good & nuisance.grid.reachable(state.pixel_mask)[None, :]


def _evaluate(state, nuisance: Nuisance, coef: np.ndarray, x: np.ndarray, data: tuple,
              jacobian: bool) -> dict:
    """chi^2 (and with ``jacobian`` the Gauss-Newton system: gradient g (m, Q) and matrix H
    (m, Q, Q), continuum marginalized) of parameters ``x`` (m, Q) = (scaled labels, delta)
    for the chunk ``data`` = (flux, ivar, usable, free) of its rows."""
    flux, ivar, usable, free = data
    n_labels = free.shape[1] - nuisance.fit_rv
    delta = x[:, n_labels] if nuisance.fit_rv else None
    model, s2, jac = _model(state, nuisance, coef, x[:, :n_labels], delta, jacobian)
    weight = np.where(usable, 1.0 / (1.0 / np.where(usable, ivar, 1.0) + s2), 0.0)
    metric = _Metric(weight, state.error_factors)
    continuum, normal = _profile(model, metric, flux, nuisance.basis)
    residual = np.where(usable, flux - continuum * model, 0.0)
    r = residual[:, :, None]
    out = {"chi2": metric.inner(r, r)[:, 0, 0], "weight": weight, "residual": residual}
    if jacobian:
        J = np.moveaxis(continuum[:, None, :] * jac * free[:, :, None], 1, 2)   # (m, P, Q)
        out["g"] = metric.inner(J, r)[:, :, 0]
        H = metric.inner(J, J)
        if normal is not None:
            A, N = normal
            X = metric.inner(A, J)
            H -= np.einsum("mjq,mjr->mqr", X, np.linalg.solve(N, X))
        out["H"] = H + np.eye(free.shape[1]) * (~free)[:, :, None]
    return out


def _search(state, nuisance: Nuisance, flux: np.ndarray, ivar: np.ndarray,
            labels: np.ndarray, window: tuple, bounds: tuple, max_iter: int, rows: slice,
            tol: float = MIN_PROMISE) -> dict:
    """Batched Levenberg-Marquardt over one chunk of stars (see the module notes) from scaled
    ``labels`` and shift 0 (the spectra moved by whole pixels), the shift within ``window``
    (low, high arrays (m,)) and the labels within ``bounds`` (scaled lower, upper (L,));
    returns scaled labels and shift, chi2, converged, on_bound, n_good, the covariance
    (m, Q, Q) and the excess scatter of the residuals."""
    lower, upper = bounds
    coef = nuisance.grid.spline_coefficients(state.theta) if nuisance.fit_rv else state.theta
    free = ~np.isfinite(nuisance.fixed[rows])
    x, low, high = labels, np.broadcast_to(lower, labels.shape), np.broadcast_to(upper,
                                                                                labels.shape)
    if nuisance.fit_rv:
        free = np.c_[free, np.ones(len(x), bool)]
        x = np.c_[x, np.zeros(len(x))]
        low, high = np.c_[low, window[0]], np.c_[high, window[1]]
    x = np.where(free, np.clip(x, low, high), x)
    usable = _usable(state, nuisance, flux, ivar)
    chi2 = _evaluate(state, nuisance, coef, x, (flux, ivar, usable, free), False)["chi2"]
    damping = np.full(len(x), LM_START)
    converged = np.zeros(len(x), bool)
    active = np.ones(len(x), bool)
    for _ in range(max_iter):
        if not active.any():
            break
        a = np.flatnonzero(active)
        data = (flux[a], ivar[a], usable[a], free[a])
        system = _evaluate(state, nuisance, coef, x[a], data, True)
        g, H = system["g"], system["H"]
        promise = np.einsum("mq,mq->m", g, _solve_psd(H, g))
        done = promise <= tol
        diag = np.maximum(np.einsum("mqq->mq", H), 1e-12)
        step = _solve_psd(H + damping[a, None, None] * np.eye(H.shape[1]) * diag[:, :, None], g)
        trial = np.where(free[a], np.clip(x[a] + step, low[a], high[a]), x[a])
        trial_chi2 = _evaluate(state, nuisance, coef, trial, data, False)["chi2"]
        better = trial_chi2 < chi2[a]
        x[a[better]], chi2[a[better]] = trial[better], trial_chi2[better]
        damping[a] *= np.where(better, LM_DOWN, LM_UP)
        stalled = ~better & (damping[a] > 1e10)
        converged[a[done | stalled]] = True
        active[a[done | stalled]] = False
    return _search_result(state, nuisance, coef, x, (flux, ivar, usable, free), low, high,
                          converged & np.isfinite(chi2))


def _search_result(state, nuisance: Nuisance, coef: np.ndarray, x: np.ndarray, data: tuple,
                   low: np.ndarray, high: np.ndarray, converged: np.ndarray) -> dict:
    """The chunk's results at its best parameters ``x`` (see :func:`_search`)."""
    final = _evaluate(state, nuisance, coef, x, data, True)
    usable, free = data[2], data[3]
    n_linear = 0 if nuisance.basis is None else nuisance.basis.shape[1]
    n_good = usable.sum(axis=1)
    dof = np.maximum(n_good - free.sum(axis=1) - n_linear, 1)
    covariance = np.full_like(final["H"], np.nan)
    ok = np.all(np.isfinite(final["H"]), axis=(1, 2)) & (n_good > free.shape[1] + n_linear)
    covariance[ok] = np.linalg.pinv(final["H"][ok], hermitian=True)
    covariance *= free[:, :, None] & free[:, None, :]
    tol = 1e-6 * (high - low)
    on_bound = np.any(free & ((x <= low + tol) | (x >= high - tol)), axis=1)
    excess = excess_scatter(final["residual"] ** 2, final["weight"], dof)
    return {"x": x, "chi2": final["chi2"], "converged": converged, "on_bound": on_bound,
            "n_good": n_good, "dof": dof, "covariance": covariance, "excess": excess}


def _nuisance_fit(state, nuisance: Nuisance, flux: np.ndarray, ivar: np.ndarray,
                  base: LabelFit, merged: dict, lower: np.ndarray,
                  upper: np.ndarray) -> LabelFit:
    """The :class:`LabelFit` of the searched chunks ``merged`` (the classic fit ``base``
    gives the multi-start fields)."""
    n_labels = len(state.label_names)
    x, covariance = merged["x"], merged["covariance"]
    labels = x[:, :n_labels]
    usable = merged["n_good"] > n_labels
    scales = state.scaling.scales
    fit = _label_fit(
        state, flux, ivar, labels, merged["chi2"], n_good=merged["n_good"], usable=usable,
        converged=merged["converged"], starts_disagree=base.starts_disagree,
        covariance=covariance[:, :n_labels, :n_labels] * scales[None, :, None]
        * scales[None, None, :], on_bound=merged["on_bound"], best_start=base.best_start,
        second_chi2=np.full(len(x), np.inf))
    fixed = np.isfinite(nuisance.fixed)
    fit.labels[fixed] = nuisance.given[fixed]                   # exactly as given
    fit.reduced_chi2 = fit.chi2 / merged["dof"]
    fit.excess_scatter = np.where(usable, merged["excess"], np.nan)
    fit.unlike_training = fit.excess_scatter > fit.unlike_limit
    fit.fixed = fixed
    if nuisance.fit_rv:
        delta = x[:, n_labels] + merged["moved"]
        per_pixel = nuisance.grid.velocity_per_pixel(delta)
        fit.rv = np.where(usable, nuisance.grid.velocity(delta), np.nan)
        formal = np.sqrt(covariance[:, -1, -1]) * per_pixel
        fit.rv_err = np.where(usable, np.hypot(formal, RV_SYSTEMATIC), np.nan)
    return fit


def best_fit_spectra(state, flux: np.ndarray, ivar: np.ndarray, labels: np.ndarray, *,
                     rv: np.ndarray | None = None,
                     continuum_order: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The best-fit model spectrum of each star and the continuum its fit used: the model at
    ``labels``, shifted by ``rv`` where it is finite (as :func:`fit_labels_nuisance` shifts
    it), and the per-segment continuum polynomial profiled against ``flux`` (the same
    generalized least squares as the fit; ones without ``continuum_order``).

    Parameters
    ----------
    state : the Cannon's inference state (``Cannon.state_``)
    flux, ivar : ndarray, shape (n_stars, n_pixels)
        The normalized spectra that were fitted.
    labels : ndarray, shape (n_stars, L)
        Best-fit labels, physical units (a row with a non-finite label gives NaN spectra).
    rv : ndarray, shape (n_stars,), default=None
        Fitted radial velocities (km/s); None or NaN: not shifted.
    continuum_order : int or None, default=None
        The order the fit used (None: no continuum, ones returned).

    Returns
    -------
    model : ndarray, shape (n_stars, n_pixels)
        Continuum times the shifted model: what the fit compared with ``flux``.
    continuum : ndarray, shape (n_stars, n_pixels)
    """
    labels = np.asarray(labels, float)
    n_stars = len(labels)
    if n_stars == 0:
        return np.zeros((0, flux.shape[1])), np.zeros((0, flux.shape[1]))
    rv = np.full(n_stars, np.nan) if rv is None else np.asarray(rv, float)
    shifted = bool(np.isfinite(rv).any())
    grid = SegmentGrid.from_wavelength(state.wavelength if (shifted or continuum_order is not None)
                                       else None, flux.shape[1])
    good = np.all(np.isfinite(labels), axis=1)
    scaled = state.scaling.scale(np.where(good[:, None], labels, state.scaling.offsets))
    nuisance = Nuisance(grid, np.full(labels.shape, np.nan), np.full(labels.shape, np.nan),
                        shifted, (0, 0), None if continuum_order is None else
                        grid.continuum_basis(int(continuum_order)))
    coef = grid.spline_coefficients(state.theta) if shifted else state.theta
    delta = grid.shift(np.where(np.isfinite(rv), rv, 0.0)) if shifted else None
    whole = np.round(delta).astype(int) if shifted else None   # moved exactly, as the fit
    model, s2, _ = _model(state, nuisance, coef, scaled, None if whole is None else
                          delta - whole, False)
    usable = _usable(state, nuisance, flux, ivar)                  # the fit's pixels
    if shifted:                                     # observed p sees the model at p - whole
        index, inside = _integer_source(grid, whole)
        model, s2 = (np.take_along_axis(values, index, axis=1) for values in (model, s2))
        usable &= inside & np.take_along_axis(usable, index, axis=1)
    weight = np.where(usable, 1.0 / (1.0 / np.where(usable, ivar, 1.0) + s2), 0.0)
    continuum, _ = _profile(model, _Metric(weight, state.error_factors),
                            np.where(usable, flux, 0.0), nuisance.basis)
    model = np.where(good[:, None], continuum * model, np.nan)
    return model, np.where(good[:, None], continuum, np.nan)
