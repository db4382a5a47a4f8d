"""Label inference: the labels that minimize chi^2 = sum_p (f - model)^2 / (sigma^2 + s_p^2).

Batched over stars, on the model's learned state (a value, not an estimator: see
:func:`fit_labels`). chi^2 is a quadratic form in each star's design vector
(:mod:`skcannon.inference.quadratic`): one pass over the pixels gives it for all stars, then
batched Levenberg-Marquardt (:mod:`skcannon.inference.optimize`) runs from several starts at
once. The multi-start search uses the plain expansion (centre 0); the statistics are then
re-expanded around the best solution, which keeps chi^2 precise near the minimum (no
cancellation against sum w f^2), for a final polish.

Uncertainties: the inverse Fisher matrix (D^T G D)^-1 at the best fit, in scaled units, turned
into physical units with the model's label scales (C_phys = S C S, S = diag(scales)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from skcannon.inference.calibration import UncertaintyCalibration
from skcannon.inference.optimize import levenberg_marquardt, linearized_guess
from skcannon.inference.quadratic import (  # noqa: F401 - their home before the split
    StarSystems,
    SufficientStatistics,
    factor_system,
    sufficient_statistics,
)
from skcannon.stats import excess_scatter

#: Starts whose solutions lie further apart than this (scaled units) count as disagreeing.
DISAGREE_DISTANCE = 0.25


#: A spectrum is unlike the training set when its residuals need an extra scatter above this
#: many times the model's median intrinsic scatter s. Held-out real giants need at most ~3.4 s
#: (99th percentile ~2.6 s); M dwarfs fitted by a giant model 8-17 s.
UNLIKE_SCATTER_FACTOR = 5.0
#: ... and at least this much (normalized flux), so that a model with s ~ 0 (simulated
#: spectra) does not call ordinary noise fluctuations unlike.
UNLIKE_MIN_SCATTER = 0.01
#: Convergence tolerance of the multi-start runs (relative chi^2 decrease a Gauss-Newton step
#: promises): they only find each star's basin - the best is then polished to the default
#: 1e-10. Measured (500 simulated giants, 5 labels): 15 % less CPU than 1e-10, final labels
#: within 0.004 K / 4e-5 dex; which start counts as best changes among starts that reach the same
#: minimum (BEST_START), STARTS_DISAGREE does not.
MULTI_START_FTOL = 1e-6
#: Stars whose residual excess scatter is computed together (:func:`residual_excess_scatter`):
#: its Newton iterations pass over (stars, pixels) arrays many times, which a block keeps in
#: cache (measured, 256 spectra x 7214 pixels, CPU time: 110-165 ms at once, 55-66 ms in
#: blocks of 16-32); each star's value as computed alone, to rounding.
EXCESS_BLOCK = 32


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
        ``outside_training``: labels outside the training set (the convex hull of the
        training labels and their range; the range only for models without a hull).
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
    rv, rv_err : ndarray (n_stars,)
        Radial velocity and its 1-sigma uncertainty, km/s (+ = redshift, relative to the
        input's frame); NaN when not fitted (``Cannon.infer_labels(fit_rv=True)``).
    fixed : ndarray of bool (n_stars, L)
        Labels held fixed at given values (``Cannon.infer_labels(fixed=...)``); all False
        by default.
    n_visits, rv_chi2, rv_variable, visit_chi2_excess : ndarray (n_stars,)
        Of a joint fit of visits (``Cannon.infer_visits``; 0, NaN, False, NaN otherwise):
        visits per star, chi^2 of their RVs about the mean, the RV-variable flag, the joint
        fit's chi^2 above the sum of the visits' own fits.
    visit_rv, visit_rv_err : ndarray (n_stars, max visits) or None
        Per-visit RVs and errors (km/s, NaN-padded) of a visit fit.
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
    rv: np.ndarray | None = None
    rv_err: np.ndarray | None = None
    fixed: np.ndarray | None = None
    n_visits: np.ndarray | None = None
    rv_chi2: np.ndarray | None = None
    rv_variable: np.ndarray | None = None
    visit_chi2_excess: np.ndarray | None = None
    visit_rv: np.ndarray | None = None
    visit_rv_err: np.ndarray | None = None

    def __post_init__(self) -> None:
        n_stars, n_labels = np.shape(self.labels)[0], np.shape(self.labels)[1]
        if self.rv is None:
            self.rv = np.full(n_stars, np.nan)
        if self.rv_err is None:
            self.rv_err = np.full(n_stars, np.nan)
        if self.fixed is None:
            self.fixed = np.zeros((n_stars, n_labels), dtype=bool)
        defaults = {"n_visits": 0, "rv_chi2": np.nan, "rv_variable": False,
                    "visit_chi2_excess": np.nan}
        for name, value in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, np.full(n_stars, value))

    @property
    def labels_fixed(self) -> np.ndarray:
        """Stars with at least one label held fixed, shape (n_stars,)."""
        return self.fixed.any(axis=1)

    @property
    def fixed_names(self) -> np.ndarray:
        """The labels held fixed per star, comma-separated ("" when none), shape (n_stars,)."""
        names = np.asarray(self.label_names, dtype=object)
        patterns, which = np.unique(self.fixed, axis=0, return_inverse=True)
        text = np.array([",".join(names[row]) for row in patterns], dtype=object)  # patterns
        return text[np.ravel(which)] if len(self.fixed) else np.array([], dtype=object)

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
            reasons.append("labels outside the training set")
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


def fit_labels(state, flux: np.ndarray, ivar: np.ndarray, *, n_starts: int = 4,
               margin: float = 0.1, seed: int = 0, max_iter: int = 100) -> LabelFit:
    """Batched multi-start Levenberg-Marquardt label fit (the "lm" method).

    Parameters
    ----------
    state : CannonState
        A fitted Cannon's learned state (``Cannon.state_``; any value with its fields
        ``vectorizer``, ``scaling``, ``theta``, ``s2``, ``pixel_mask``, ``label_range``,
        ``error_factors``, ``calibration``, ``label_names`` and ``label_bounds(margin)``).
    flux, ivar : ndarray, shape (n_stars, n_pixels)
        Normalized spectra on the model's grid.
    n_starts : int, default=4
        Starts per star besides the linearized guess (the training mean and Sobol points).
    margin : float, default=0.1
        Bounds: the training label range widened by this fraction on each side.
    seed : int, default=0
        Seed of the spread starting points.
    max_iter : int, default=100
        Levenberg-Marquardt iterations per run.

    Returns
    -------
    LabelFit
    """
    vectorizer, scaling = state.vectorizer, state.scaling
    lower, upper = (scaling.scale(bound)[0] for bound in state.label_bounds(margin))
    systems = StarSystems(state.theta, state.s2, state.pixel_mask, flux, ivar,
                          state.error_factors)
    labels, chi2, converged = _multi_start(systems.around(None), vectorizer, lower, upper,
                                           n_starts=n_starts, seed=seed, max_iter=max_iter)
    best = np.argmin(chi2, axis=0)
    rows = np.arange(flux.shape[0])
    # polish: re-expand around the best solution (precise chi^2 near the minimum) and refine
    stats = systems.around(vectorizer.design_matrix(labels[best, rows]))
    best_labels, best_chi2, polished_ok = levenberg_marquardt(
        stats, vectorizer, labels[best, rows], rows, lower, upper, max_iter=max_iter)
    distance = np.abs(labels - best_labels[None]).max(axis=2)
    other = (distance > DISAGREE_DISTANCE) & np.isfinite(chi2)
    usable = stats.n_good > vectorizer.n_labels
    return _label_fit(
        state, flux, ivar, best_labels, best_chi2, n_good=stats.n_good, usable=usable,
        converged=polished_ok | converged[best, rows],
        covariance=_covariance(vectorizer, stats.G, best_labels, usable, scaling.scales),
        on_bound=_on_bounds(best_labels, lower, upper), starts_disagree=other.any(axis=0),
        best_start=best, second_chi2=np.where(other, chi2, np.inf).min(axis=0))


def _multi_start(plain: SufficientStatistics, vectorizer, lower: np.ndarray,
                 upper: np.ndarray, *, n_starts: int, seed: int,
                 max_iter: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Levenberg-Marquardt from the linearized guess and ``n_starts`` spread starts, every
    star and start at once.

    Parameters
    ----------
    plain : SufficientStatistics
        The plain expansion (centre 0) of every star's chi^2.
    vectorizer : PolynomialVectorizer
    lower, upper : ndarray, shape (L,)
        Scaled bounds.
    n_starts, seed, max_iter : int
        As in :func:`fit_labels`.

    Returns
    -------
    labels : ndarray, shape (n_starts + 1, n_stars, L)
        Scaled solutions, start-major (start 0 the linearized guess).
    chi2 : ndarray, shape (n_starts + 1, n_stars)
        Their chi^2 (inf where not finite).
    converged : ndarray of bool, shape (n_starts + 1, n_stars)
    """
    n_stars, n_labels = plain.h.shape[0], vectorizer.n_labels
    starts = [linearized_guess(plain, vectorizer, lower, upper)]
    for point in start_points(n_starts, n_labels, seed):
        starts.append(np.broadcast_to(np.clip(point, lower, upper), (n_stars, n_labels)))
    n_total = len(starts)
    stars = np.tile(np.arange(n_stars), n_total)
    labels, chi2, converged = levenberg_marquardt(plain, vectorizer, np.concatenate(starts),
                                                  stars, lower, upper, max_iter=max_iter,
                                                  ftol=MULTI_START_FTOL)
    chi2 = np.where(np.isfinite(chi2), chi2, np.inf).reshape(n_total, n_stars)
    return (labels.reshape(n_total, n_stars, n_labels), chi2,
            converged.reshape(n_total, n_stars))


def _covariance(vectorizer, G: np.ndarray, labels: np.ndarray, usable: np.ndarray,
                scales: np.ndarray) -> np.ndarray:
    """The inverse Fisher matrix (D^T G D)^-1 at the scaled ``labels`` (n_stars, L), in
    physical units (NaN for stars not ``usable`` or with a non-finite Fisher matrix); shape
    (n_stars, L, L). ``G``: (n_stars, k, k); ``scales``: the labels' scales (L,)."""
    D = vectorizer.jacobian(labels)
    fisher = np.einsum("nkl,nkj,nji->nli", D, G, D)
    covariance_scaled = np.full_like(fisher, np.nan)
    invertible = usable & np.all(np.isfinite(fisher), axis=(1, 2))
    if invertible.any():
        covariance_scaled[invertible] = np.linalg.pinv(fisher[invertible], hermitian=True)
    return covariance_scaled * scales[None, :, None] * scales[None, None, :]


def _on_bounds(labels: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Stars (rows of scaled ``labels``) with a label on a bound, shape (n_stars,)."""
    tol = 1e-6 * (upper - lower)
    return np.any((labels <= lower + tol) | (labels >= upper - tol), axis=1)


def _label_fit(state, flux: np.ndarray, ivar: np.ndarray, labels: np.ndarray,
               chi2: np.ndarray, *, n_good: np.ndarray, usable: np.ndarray,
               converged: np.ndarray, starts_disagree: np.ndarray, **fields) -> LabelFit:
    """The :class:`LabelFit` of the best scaled ``labels`` (n_stars, L) with their ``chi2``:
    physical labels, the range, excess-scatter and calibration fields, and the stars that are
    not ``usable`` (too few good pixels) blanked. ``fields``: the other LabelFit fields."""
    physical = state.scaling.unscale(labels)
    outside = _outside_training(state, physical)
    dof = np.maximum(n_good - state.vectorizer.n_labels, 1)
    excess = residual_excess_scatter(state, flux, ivar, labels, dof)
    limit = unlike_training_limit(state.s2[state.pixel_mask])
    failed = ~usable
    physical[failed] = np.nan
    chi2 = np.where(failed, np.nan, chi2)
    return LabelFit(
        labels=physical, chi2=chi2, reduced_chi2=chi2 / dof, n_good=n_good,
        converged=converged & np.isfinite(chi2) & ~failed, outside_training=outside,
        starts_disagree=starts_disagree & ~failed,
        excess_scatter=np.where(failed, np.nan, excess), unlike_training=excess > limit,
        label_names=tuple(state.label_names), training_range=np.asarray(state.label_range),
        unlike_limit=limit, systematic=_systematic(state, len(labels)), **fields)


def _outside_training(state, physical: np.ndarray) -> np.ndarray:
    """Rows of ``physical`` labels (n, L) outside the model's training set: its
    ``inside_training`` (hull and range) where the state has one, else the range."""
    if hasattr(state, "inside_training"):
        return ~state.inside_training(physical) & np.all(np.isfinite(physical), axis=1)
    low, high = state.label_range
    return np.any((physical < low) | (physical > high), axis=1)


def _systematic(state, n_stars: int) -> np.ndarray | None:
    """The model's calibrated systematic uncertainty, (n_stars, L) (None without one)."""
    if state.calibration is None:
        return None
    return UncertaintyCalibration(state.calibration).systematic(n_stars)


def unlike_training_limit(s2: np.ndarray) -> float:
    """Excess scatter above which a spectrum is unlike the training set:
    :data:`UNLIKE_SCATTER_FACTOR` x the model's median intrinsic scatter s, at least
    :data:`UNLIKE_MIN_SCATTER`. ``s2``: the model's s^2 over its trained pixels."""
    typical = float(np.sqrt(np.median(s2))) if np.size(s2) else 0.0
    return max(UNLIKE_SCATTER_FACTOR * typical, UNLIKE_MIN_SCATTER)


def residual_excess_scatter(state, flux: np.ndarray, ivar: np.ndarray,
                            scaled_labels: np.ndarray, dof: np.ndarray) -> np.ndarray:
    """:func:`skcannon.stats.excess_scatter` of each star's residuals from the model at its
    (scaled) labels, over the model's pixels, with variance noise + s^2; shape (n_stars,),
    computed in blocks of :data:`EXCESS_BLOCK` stars. ``state``: the model's learned state
    (see :func:`fit_labels`)."""
    return np.concatenate([np.zeros(0)] + [
        _excess_block(state, flux[rows], ivar[rows], scaled_labels[rows], dof[rows])
        for rows in (slice(i, i + EXCESS_BLOCK) for i in range(0, len(flux), EXCESS_BLOCK))])


def _excess_block(state, flux: np.ndarray, ivar: np.ndarray, scaled_labels: np.ndarray,
                  dof: np.ndarray) -> np.ndarray:
    """:func:`residual_excess_scatter` of one block of stars."""
    squared = state.vectorizer.design_matrix(scaled_labels) @ state.theta.T
    np.subtract(flux, squared, out=squared)
    np.square(squared, out=squared)                            # (flux - model)^2
    weight = ivar * state.pixel_mask[None, :]
    denominator = weight * state.s2[None, :]
    denominator += 1.0
    weight /= denominator                                      # 1 / (sigma^2 + s^2), 0 if bad
    squared[~(weight > 0)] = 0.0
    return excess_scatter(squared, weight, dof)
