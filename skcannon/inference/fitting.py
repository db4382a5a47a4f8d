"""Label inference: the labels that minimize chi^2 = sum_p (f - model)^2 / (sigma^2 + s_p^2).

Batched over stars. With the noise fixed, chi^2 of star n is an exact polynomial in its design
vector v = v(l) (l the scaled labels). Expanded around a centre v0 (a first guess):

    chi2_n(l) = c_n - 2 h_n . (v - v0) + (v - v0)^T G_n (v - v0),
    G_n = Theta^T W_n Theta (k x k),  h_n = Theta^T W_n r_n,  c_n = r_n^T W_n r_n,
    r_n = f_n - Theta v0_n  (the residuals at the centre),

with W_n = diag(1 / (sigma_np^2 + s_p^2)) over good pixels. One pass over the pixels (a matrix
product for all stars at once) gives G, h and c; every Gauss-Newton / Levenberg-Marquardt step
and every start then costs O(k^2 L) per star. The multi-start search uses the plain expansion
(centre 0); the statistics are then re-expanded around the best solution, which keeps chi^2
precise near the minimum (no cancellation against sum w f^2), for a final polish. The
Jacobian of the model is Theta dv/dl, so the Gauss-Newton matrix is D^T G D and the gradient
D^T (h - G (v - v0)), with D = dv/dl (k x L).

The model enters only through its arrays and its vectorizer (design matrix and Jacobian of a
:class:`skcannon.model.PolynomialVectorizer`), so this module does not import the model package.

Uncertainties: the inverse Fisher matrix (D^T G D)^-1 at the best fit, in scaled units, turned
into physical units with the model's label scales (C_phys = S C S, S = diag(scales)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from skcannon.inference.calibration import UncertaintyCalibration
from skcannon.stats import excess_scatter

#: Levenberg-Marquardt damping: start, and factors on failure / success.
LM_START, LM_UP, LM_DOWN = 1e-3, 10.0, 0.3
#: Starts whose solutions lie further apart than this (scaled units) count as disagreeing.
DISAGREE_DISTANCE = 0.25


@dataclass
class SufficientStatistics:
    """Per-star quadratic form of chi^2 in the design vector.

    Attributes
    ----------
    G : ndarray, shape (n_stars, k, k)
    h : ndarray, shape (n_stars, k)
    c : ndarray, shape (n_stars,)
    n_good : ndarray of int, shape (n_stars,)
    centre : ndarray, shape (n_stars, k)  the design vectors v0 of the expansion
    """

    G: np.ndarray
    h: np.ndarray
    c: np.ndarray
    n_good: np.ndarray
    centre: np.ndarray


def factor_system(weight: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """M = I + U^T W U of every star (the r x r matrix of the Woodbury identity), one GEMM.

    Parameters
    ----------
    weight : ndarray, shape (n_stars, n_pixels)  1 / (sigma^2 + s^2), 0 at unusable pixels
    factors : ndarray, shape (n_pixels, r)  the error factors U

    Returns
    -------
    ndarray, shape (n_stars, r, r)
    """
    n_pixels, r = factors.shape
    products = (factors[:, :, None] * factors[:, None, :]).reshape(n_pixels, r * r)
    return (np.atleast_2d(weight) @ products).reshape(-1, r, r) + np.eye(r)


class StarSystems:
    """The pixel weights and G = Theta^T W Theta of every star, computed once; statistics
    around any centre then cost one more pass (:meth:`around`).

    With error factors U (n_pixels, r) the pixel covariance is C = W^-1 + U U^T and, by the
    Woodbury identity, C^-1 = W - W U M^-1 U^T W with M = I + U^T W U (r x r per star): each
    statistic loses a rank-r correction, A^T M^-1 A with A = U^T W Theta.

    Parameters
    ----------
    theta : (n_pixels, k); s2, pixel_mask : (n_pixels,); flux, ivar : (n_stars, n_pixels)
    factors : (n_pixels, r) or None
    """

    def __init__(self, theta: np.ndarray, s2: np.ndarray, pixel_mask: np.ndarray,
                 flux: np.ndarray, ivar: np.ndarray, factors: np.ndarray | None = None) -> None:
        good = (ivar > 0) & np.isfinite(ivar) & np.isfinite(flux) & pixel_mask[None, :]
        weight = np.where(good, ivar, 1.0)
        np.reciprocal(weight, out=weight)
        weight += s2[None, :]
        np.reciprocal(weight, out=weight)
        weight[~good] = 0.0                                   # 1 / (sigma^2 + s^2), 0 if bad
        self.theta = theta
        self.weight = weight
        self.flux = np.where(good, flux, 0.0)
        self.n_good = good.sum(axis=1)
        k = theta.shape[1]
        iu, ju = np.triu_indices(k)
        flat = weight @ (theta[:, iu] * theta[:, ju])         # (n, k(k+1)/2): one GEMM
        self.G = np.empty((flux.shape[0], k, k))
        self.G[:, iu, ju] = flat
        self.G[:, ju, iu] = flat
        self.factors = None if factors is None or factors.shape[1] == 0 else factors
        if self.factors is not None:      # weight is 0 at masked pixels: U needs no masking
            U, r = self.factors, self.factors.shape[1]
            # A_n = U^T W_n Theta and M_n = I + U^T W_n U for all stars: one GEMM each
            A = weight @ (U[:, :, None] * theta[:, None, :]).reshape(len(U), r * k)
            self.A = A.reshape(-1, r, k)
            self.M = factor_system(weight, U)
            self.G -= np.einsum("nrk,nrl->nkl", self.A, np.linalg.solve(self.M, self.A))

    def around(self, centre: np.ndarray | None = None) -> SufficientStatistics:
        """G, h, c expanded around design vectors ``centre`` (n_stars, k) (default 0)."""
        n, k = self.flux.shape[0], self.theta.shape[1]
        if centre is None:
            centre = np.zeros((n, k))
            wr = self.weight * self.flux
            c = np.einsum("np,np->n", wr, self.flux)
        else:
            residual = centre @ self.theta.T
            np.subtract(self.flux, residual, out=residual)
            residual *= self.weight != 0                       # masked pixels: residual 0
            wr = self.weight * residual
            c = np.einsum("np,np->n", wr, residual)
        h = wr @ self.theta
        if self.factors is not None:
            y = wr @ self.factors                                  # U^T W r, (n, r)
            z = np.linalg.solve(self.M, y[:, :, None])[:, :, 0]
            h -= np.einsum("nrk,nr->nk", self.A, z)
            c = c - np.einsum("nr,nr->n", y, z)
        return SufficientStatistics(self.G, h, c, self.n_good, centre)


def sufficient_statistics(theta: np.ndarray, s2: np.ndarray, pixel_mask: np.ndarray,
                          flux: np.ndarray, ivar: np.ndarray, *, centre: np.ndarray | None = None,
                          factors: np.ndarray | None = None) -> SufficientStatistics:
    """G, h, c for every star, expanded around ``centre`` (see :class:`StarSystems`)."""
    return StarSystems(theta, s2, pixel_mask, flux, ivar, factors).around(centre)


def chi2_of(stats: SufficientStatistics, design: np.ndarray, stars: np.ndarray) -> np.ndarray:
    """chi^2 of ``stars`` (indices) at design vectors ``design`` (m, k)."""
    G, h, c = stats.G[stars], stats.h[stars], stats.c[stars]
    dv = design - stats.centre[stars]
    return c - 2 * np.einsum("mk,mk->m", h, dv) + np.einsum("mk,mkl,ml->m", dv, G, dv)


def levenberg_marquardt(stats: SufficientStatistics, vectorizer,
                        start: np.ndarray, stars: np.ndarray, lower: np.ndarray,
                        upper: np.ndarray, max_iter: int = 100, ftol: float = 1e-10
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimize chi^2 for many (star, start) pairs at once, within box bounds.

    Parameters
    ----------
    start : ndarray, shape (m, L)  scaled starting labels
    stars : ndarray of int, shape (m,)  the star of each row
    lower, upper : ndarray, shape (L,)  scaled bounds

    ftol : float
        Converged when the decrease an undamped Gauss-Newton step promises is below ``ftol``
        x chi^2 (a minimum), or, on a bound, when no feasible step lowers chi^2 any more. A row
        whose damping grows without bound elsewhere stops unconverged.

    Returns
    -------
    labels (m, L), chi2 (m,), converged (m,) bool
    """
    labels = np.clip(start, lower, upper)
    G, h = stats.G[stars], stats.h[stars]
    chi2 = chi2_of(stats, vectorizer.design_matrix(labels), stars)
    damping = np.full(len(labels), LM_START)
    converged = np.zeros(len(labels), dtype=bool)
    stopped = np.zeros(len(labels), dtype=bool)
    eye = np.eye(labels.shape[1])
    for _ in range(max_iter):
        active = ~stopped
        if not active.any():
            break
        v = vectorizer.design_matrix(labels[active])
        D = vectorizer.jacobian(labels[active])                      # (m, k, L)
        GD = G[active] @ D
        hessian = np.einsum("mkl,mkj->mlj", D, GD)                     # D^T G D
        dv = v - stats.centre[stars[active]]
        gradient = np.einsum("mkl,mk->ml", D, h[active] - np.einsum("mkj,mj->mk", G[active], dv))
        diag = np.einsum("mll->ml", hessian)
        # the decrease of chi^2 an undamped Gauss-Newton step would promise: ~0 at a minimum
        # (gradient components pushing through a bound the label sits on do not count)
        tol = 1e-9 * (upper - lower)
        blocked = (((labels[active] <= lower + tol) & (gradient < 0))
                   | ((labels[active] >= upper - tol) & (gradient > 0)))
        free = np.where(blocked, 0.0, gradient)
        promise = np.einsum("ml,ml->m", free, _solve_psd(hessian, free))
        at_minimum = promise <= np.maximum(ftol * np.abs(chi2[active]), 1e-9)
        system = hessian + damping[active, None, None] * eye * np.maximum(diag, 1e-12)[:, :, None]
        step = _solve_psd(system, gradient)
        trial = np.clip(labels[active] + step, lower, upper)
        trial_chi2 = chi2_of(stats, vectorizer.design_matrix(trial), stars[active])
        better = trial_chi2 < chi2[active]
        index = np.flatnonzero(active)
        labels[index[better]] = trial[better]
        chi2[index[better]] = trial_chi2[better]
        damping[index[better]] *= LM_DOWN
        damping[index[~better]] *= LM_UP
        # on a bound the promised step points outside: converged when no feasible step helps
        converged[index[at_minimum]] = True
        stalled = ~better & (damping[index] > 1e10)
        converged[index[stalled & _on_bound(labels[index], lower, upper)]] = True
        stopped[index[at_minimum | stalled]] = True
    converged &= np.isfinite(chi2)
    return labels, chi2, converged


def _solve_psd(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Batched solve of (m, L, L) x = (m, L), least-squares where singular."""
    try:
        return np.linalg.solve(matrix, vector[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return np.einsum("mij,mj->mi", np.linalg.pinv(matrix), vector)


def _on_bound(labels: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    tol = 1e-9 * (upper - lower)
    return np.any((labels <= lower + tol) | (labels >= upper - tol), axis=1)


def linearized_guess(stats: SufficientStatistics, vectorizer,
                     lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """First guess: solve the linear least squares for the whole design vector v (the Cannon's
    classic trick) and read the labels off its linear terms, clipped to the bounds."""
    k = stats.G.shape[1]
    ridge = (1e-10 * np.trace(stats.G, axis1=1, axis2=2) + 1e-300)[:, None, None] * np.eye(k)
    v = stats.centre + _solve_psd(stats.G + ridge, stats.h)
    linear = [vectorizer.terms.index((i,)) for i in range(vectorizer.n_labels)]
    scale = np.where(np.abs(v[:, :1]) > 1e-12, v[:, :1], 1.0)     # v_0 should be 1
    return np.clip(v[:, linear] / scale, lower, upper)


#: A spectrum is unlike the training set when its residuals need an extra scatter above this
#: many times the model's median intrinsic scatter s. Held-out real giants need at most ~3.4 s
#: (99th percentile ~2.6 s); M dwarfs fitted by a giant model 8-17 s.
UNLIKE_SCATTER_FACTOR = 5.0
#: ... and at least this much (normalized flux), so that a model with s ~ 0 (simulated
#: spectra) does not call ordinary noise fluctuations unlike.
UNLIKE_MIN_SCATTER = 0.01


@dataclass
class LabelFit:
    """Best-fit labels of many stars.

    Attributes
    ----------
    labels : ndarray (n_stars, L)  physical units
    covariance : ndarray (n_stars, L, L)  physical units (inverse Fisher matrix)
    chi2, reduced_chi2 : ndarray (n_stars,)
    n_good : ndarray (n_stars,)  pixels used
    converged, on_bound, outside_training, starts_disagree : ndarray of bool (n_stars,)
        ``outside_training``: labels outside the training labels' range.
    excess_scatter : ndarray (n_stars,)
        Scatter m the residuals need beyond the noise and the model's s^2 (normalized flux;
        see :func:`skcannon.stats.excess_scatter`): about 0 for spectra like the training set's.
    unlike_training : ndarray of bool (n_stars,)
        The spectrum is unlike the training spectra: ``excess_scatter`` above
        ``unlike_limit`` (e.g. an M dwarf fitted by a giant model lands on giant labels inside
        the training range, but needs several times the model's own scatter).
    unlike_limit : float
        The threshold used (see :func:`unlike_training_limit`).
    systematic : ndarray (n_stars, L) or None
        Calibrated systematic uncertainty per star and label (from the model's cross-validated
        calibration; None without one). ``uncertainties`` then include it; the noise-only ones
        are ``formal_uncertainties``.
    best_start : ndarray of int (n_stars,)  0 = linearized guess, then the spread starts
    second_chi2 : ndarray (n_stars,)  chi^2 of the best disagreeing solution (inf if none)
    label_names : tuple of str
    training_range : ndarray (2, L)  the model's training minimum and maximum
    """

    labels: np.ndarray
    covariance: np.ndarray
    chi2: np.ndarray
    reduced_chi2: np.ndarray
    n_good: np.ndarray
    converged: np.ndarray
    on_bound: np.ndarray
    outside_training: np.ndarray
    starts_disagree: np.ndarray
    best_start: np.ndarray
    second_chi2: np.ndarray
    excess_scatter: np.ndarray
    unlike_training: np.ndarray
    label_names: tuple = field(default_factory=tuple)
    training_range: np.ndarray | None = None
    unlike_limit: float = np.nan
    systematic: np.ndarray | None = None

    def reasons(self, n: int) -> list[str]:
        """What in star ``n``'s fit could explain a poor result (the fit's own flags)."""
        reasons = []
        if self.reduced_chi2[n] > 2:
            reasons.append(f"poor fit (reduced chi2 {self.reduced_chi2[n]:.2f})")
        if self.starts_disagree[n]:
            reasons.append(f"starts disagree (local minimum; next solution at chi2 "
                           f"+{self.second_chi2[n] - self.chi2[n]:.1f})")
        if self.on_bound[n]:
            reasons.append("best fit on a bound of the label range")
        if self.outside_training[n]:
            reasons.append("labels outside the training range")
        if self.unlike_training[n]:
            reasons.append(f"spectrum unlike the training set (needs extra scatter "
                           f"{self.excess_scatter[n]:.3f} > {self.unlike_limit:.3f})")
        if not self.converged[n]:
            reasons.append("fit did not converge")
        return reasons

    @property
    def confident(self) -> np.ndarray:
        """True where the labels can be trusted as far as the fit can tell: converged, not on
        a bound, inside the training range and a spectrum like the training set's."""
        return (self.converged & ~self.on_bound & ~self.outside_training
                & ~self.unlike_training)

    @property
    def formal_uncertainties(self) -> np.ndarray:
        """Noise-only 1-sigma uncertainties (n_stars, L): sqrt of the inverse Fisher matrix's
        diagonal (pixel noise and the model's s^2 only)."""
        return np.sqrt(np.einsum("nll->nl", self.covariance))

    @property
    def uncertainties(self) -> np.ndarray:
        """1-sigma uncertainties (n_stars, L): the formal ones with the calibrated systematic
        term added in quadrature when the model has a calibration, else the formal ones."""
        formal = self.formal_uncertainties
        if self.systematic is None:
            return formal
        return np.sqrt(formal ** 2 + self.systematic ** 2)

    def to_frame(self, ids=None):
        """The results as a table: the output columns :mod:`skcannon.schema` declares.

        Parameters
        ----------
        ids : sequence of str, optional
            One identifier per star: an ``APOGEE_ID`` column first.

        Returns
        -------
        DataFrame, one row per star: per label its value, ``_ERR`` and ``_ERR_FORMAL``, the
        covariances, then every ``FIT`` column of the schema (each from the attribute it
        declares as its source; ``FLAGS`` packed from the flag columns).
        """
        import pandas as pd

        from skcannon import schema

        table = pd.DataFrame(index=range(len(self.labels)))
        if ids is not None:
            table["APOGEE_ID"] = list(ids)
        sources: dict = {}
        for declared, _, index in schema.label_columns(self.label_names):
            if declared.source not in sources:
                sources[declared.source] = getattr(self, declared.source)
            table[declared.name] = sources[declared.source][(slice(None), *index)]
        for declared in schema.columns(schema.FIT):
            table[declared.name] = getattr(self, declared.source) if declared.source else 0
        table[schema.FLAGS] = schema.pack_flags(table)
        return table


def start_points(n_starts: int, n_labels: int, seed: int = 0) -> np.ndarray:
    """Spread starting points in scaled label space (training mean +- ~1.2 sd), shape
    (n_starts, L); the first is the training mean. Deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    points = [np.zeros(n_labels)]
    if n_starts > 1:
        from scipy.stats import qmc

        m = int(np.ceil(np.log2(n_starts - 1))) if n_starts > 2 else 0
        sobol = qmc.Sobol(n_labels, scramble=True, seed=rng).random_base2(m)[: n_starts - 1]
        points += list((sobol - 0.5) * 2.4)
    return np.asarray(points[:n_starts])


def fit_labels(model, flux: np.ndarray, ivar: np.ndarray, *, n_starts: int = 4,
               margin: float = 0.1, seed: int = 0, max_iter: int = 100) -> LabelFit:
    """Batched multi-start Levenberg-Marquardt label fit for a fitted Cannon.

    Parameters
    ----------
    model : fitted Cannon
    flux, ivar : ndarray, shape (n_stars, n_pixels)
        Normalized spectra on the model's grid.
    n_starts : int
        Starts per star besides the linearized guess (the training mean and Sobol points).
    margin : float
        Bounds: the training label range widened by this fraction on each side.
    seed : int
        Seed of the spread starting points.
    """
    vectorizer = model.vectorizer_
    scaling = model.scaling_
    n_labels = vectorizer.n_labels
    low, high = model.label_range_
    lower, upper = (scaling.scale(bound)[0] for bound in model.label_bounds(margin))
    systems = StarSystems(model.theta_, model.s2_, model.pixel_mask_, flux, ivar,
                          getattr(model, "error_factors_", None))
    plain = systems.around(None)
    n_stars = flux.shape[0]
    usable = plain.n_good > n_labels
    guess = linearized_guess(plain, vectorizer, lower, upper)
    stats = plain     # the multi-start search; the polish below re-expands around the best
    starts = [guess]
    for point in start_points(n_starts, n_labels, seed):
        starts.append(np.broadcast_to(np.clip(point, lower, upper), (n_stars, n_labels)))
    n_total = len(starts)
    start = np.concatenate(starts)                                     # (S n, L), start-major
    stars = np.tile(np.arange(n_stars), n_total)
    labels, chi2, converged = levenberg_marquardt(stats, vectorizer, start, stars, lower, upper,
                                                  max_iter=max_iter)
    labels = labels.reshape(n_total, n_stars, n_labels)
    chi2 = np.where(np.isfinite(chi2), chi2, np.inf).reshape(n_total, n_stars)
    converged = converged.reshape(n_total, n_stars)
    best = np.argmin(chi2, axis=0)
    rows = np.arange(n_stars)
    best_labels = labels[best, rows]
    best_chi2 = chi2[best, rows]
    best_converged = converged[best, rows]
    # polish: re-expand around the best solution (precise chi^2 near the minimum) and refine
    stats = systems.around(vectorizer.design_matrix(best_labels))
    polished, polished_chi2, polished_ok = levenberg_marquardt(
        stats, vectorizer, best_labels, rows, lower, upper, max_iter=max_iter)
    best_labels, best_chi2 = polished, polished_chi2
    best_converged = polished_ok | best_converged
    distance = np.abs(labels - best_labels[None]).max(axis=2)
    other = (distance > DISAGREE_DISTANCE) & np.isfinite(chi2)
    second = np.where(other, chi2, np.inf).min(axis=0)
    # covariance from the Gauss-Newton (Fisher) matrix at the best fit
    D = vectorizer.jacobian(best_labels)
    fisher = np.einsum("nkl,nkj,nji->nli", D, stats.G, D)
    covariance_scaled = np.full_like(fisher, np.nan)
    invertible = usable & np.all(np.isfinite(fisher), axis=(1, 2))
    if invertible.any():
        covariance_scaled[invertible] = np.linalg.pinv(fisher[invertible], hermitian=True)
    scales = scaling.scales
    covariance = covariance_scaled * scales[None, :, None] * scales[None, None, :]
    physical = scaling.unscale(best_labels)
    tol = 1e-6 * (upper - lower)
    on_bound = np.any((best_labels <= lower + tol) | (best_labels >= upper - tol), axis=1)
    outside = np.any((physical < low) | (physical > high), axis=1)
    dof = np.maximum(stats.n_good - n_labels, 1)
    excess = residual_excess_scatter(model, flux, ivar, best_labels, dof)
    limit = unlike_training_limit(model.s2_[model.pixel_mask_])
    failed = ~usable
    physical[failed] = np.nan
    best_chi2 = np.where(failed, np.nan, best_chi2)
    return LabelFit(
        labels=physical, covariance=covariance, chi2=best_chi2, reduced_chi2=best_chi2 / dof,
        n_good=stats.n_good, converged=best_converged & np.isfinite(best_chi2) & ~failed,
        on_bound=on_bound,
        outside_training=outside, starts_disagree=other.any(axis=0) & ~failed,
        best_start=best, second_chi2=second,
        excess_scatter=np.where(failed, np.nan, excess), unlike_training=excess > limit,
        label_names=tuple(model.label_names), training_range=np.asarray(model.label_range_),
        unlike_limit=limit, systematic=_systematic(model, n_stars))


def _systematic(model, n_stars: int) -> np.ndarray | None:
    """The model's calibrated systematic uncertainty, (n_stars, L) (None without one)."""
    calibration = getattr(model, "calibration_", None)
    if calibration is None:
        return None
    return UncertaintyCalibration(calibration).systematic(n_stars)


def unlike_training_limit(s2: np.ndarray) -> float:
    """Excess scatter above which a spectrum is unlike the training set:
    :data:`UNLIKE_SCATTER_FACTOR` x the model's median intrinsic scatter s, at least
    :data:`UNLIKE_MIN_SCATTER`. ``s2``: the model's s^2 over its trained pixels."""
    typical = float(np.sqrt(np.median(s2))) if np.size(s2) else 0.0
    return max(UNLIKE_SCATTER_FACTOR * typical, UNLIKE_MIN_SCATTER)


def residual_excess_scatter(model, flux: np.ndarray, ivar: np.ndarray,
                            scaled_labels: np.ndarray, dof: np.ndarray) -> np.ndarray:
    """:func:`skcannon.stats.excess_scatter` of each star's residuals from the model at its
    (scaled) labels, over the model's pixels, with variance noise + s^2; shape (n_stars,)."""
    predicted = model.vectorizer_.design_matrix(scaled_labels) @ model.theta_.T
    ivar = ivar * model.pixel_mask_[None, :]
    weight = ivar / (1.0 + ivar * model.s2_[None, :])          # 1 / (sigma^2 + s^2), 0 if bad
    squared = np.where(weight > 0, (flux - predicted) ** 2, 0.0)
    return excess_scatter(squared, weight, dof)
