"""The log-posterior of one spectrum's labels given a model's learned state, in numpy.

Survey-free and sampler-free: :class:`LogPosterior` gives ``log_prob(labels)`` and
``log_prob_and_grad(labels)`` of physical labels (one vector or a batch), which is all a sampler
needs (emcee's ``EnsembleSampler(log_prob_fn)``; see :mod:`skcannon.inference.samplers`). The
PyMC graph of the same posterior (:mod:`skcannon.inference.pymc_graph`) reads the same data,
:func:`spectrum_data`, so both agree to a constant (tests check it).

Priors (:data:`PRIORS`), independent per label: "uniform" over the training range widened by
:data:`PRIOR_MARGIN` on each side, or "normal", centred on the training mean with twice the
training standard deviation.

Likelihoods (:data:`LIKELIHOODS`), N(f | model, sigma^2 + s^2) over the model's pixels (with
error factors U, pixel covariance diag(sigma^2 + s^2) + U U^T, by the Woodbury identity):
"pixels" evaluates it pixel by pixel (masked pixels get the standard deviation
:data:`MASKED_SIGMA`, so they carry no weight and the data keep their shape); "quadratic" through
the spectrum's quadratic form of chi^2 in the design vector (G, h, c of
:mod:`skcannon.inference.quadratic`), O(k^2) per evaluation instead of O(n_pixels k), the same
function of the labels up to a constant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skcannon.inference.quadratic import factor_system, sufficient_statistics

#: The priors a posterior can have.
PRIORS = ("uniform", "normal")
#: The forms of the likelihood (the same function of the labels, up to a constant).
LIKELIHOODS = ("pixels", "quadratic")
#: "uniform" priors: over the training range widened by this fraction on each side.
PRIOR_MARGIN = 0.1
#: "normal" priors: this many training standard deviations wide.
NORMAL_PRIOR_WIDTH = 2.0
#: A masked pixel's standard deviation: large enough to carry no weight.
MASKED_SIGMA = 1e6


def error_factors(state) -> np.ndarray | None:
    """The state's error factors U (n_pixels, r), or None when it has none (or r = 0)."""
    factors = state.error_factors
    return None if factors is None or not factors.shape[1] else factors


def check_choice(kind: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise ValueError ``"<kind> must be 'a' or 'b', got 'x'"`` unless ``value`` is a choice."""
    if value not in choices:
        raise ValueError(f"{kind} must be {' or '.join(map(repr, choices))}, got {value!r}")


def log_likelihood(state, labels: np.ndarray, flux: np.ndarray, ivar: np.ndarray) -> np.ndarray:
    """ln p(spectra | labels) per star over the model's pixels, normalized.

    Parameters
    ----------
    state : CannonState
        The model's learned state (see :func:`skcannon.inference.fitting.fit_labels`).
    labels : ndarray, shape (n_stars, n_labels)
        Physical labels.
    flux, ivar : ndarray, shape (n_stars, n_pixels)
        Normalized spectra on the model's grid.

    Returns
    -------
    ndarray, shape (n_stars,)
        With error factors: the multivariate normal of covariance diag(sigma^2 + s^2) + U U^T.
    """
    model = state.vectorizer.design_matrix(state.scaling.scale(labels)) @ state.theta.T
    ivar = np.where(state.pixel_mask, ivar, 0.0)
    good = ivar > 0
    var = np.where(good, 1.0 / np.where(good, ivar, 1.0), 1.0) + state.s2
    resid = np.where(good, flux - model, 0.0)
    weight = np.where(good, 1.0 / var, 0.0)
    quadratic = np.sum(weight * resid ** 2, axis=1)
    log_det = np.sum(np.where(good, np.log(2 * np.pi * var), 0.0), axis=1)
    factors = error_factors(state)
    if factors is not None:
        y = (weight * resid) @ factors                                     # (n, r)
        M = factor_system(weight, factors)
        quadratic -= np.einsum("nr,nr->n", y, np.linalg.solve(M, y[:, :, None])[:, :, 0])
        log_det += np.linalg.slogdet(M)[1]
    return -0.5 * (quadratic + log_det)


@dataclass(frozen=True)
class LabelPriors:
    """Independent priors on the physical labels.

    Attributes
    ----------
    kind : {"uniform", "normal"}
    names : tuple of str
    bounds : ndarray, shape (2, n_labels), or None
        Lower and upper limits of "uniform" priors (None for "normal").
    mu, sigma : ndarray, shape (n_labels,)
        Centres and widths of "normal" priors.
    """

    kind: str
    names: tuple
    bounds: np.ndarray | None
    mu: np.ndarray
    sigma: np.ndarray

    @classmethod
    def of(cls, state, kind: str = "uniform") -> LabelPriors:
        """The priors ``kind`` (one of :data:`PRIORS`) of a model's learned ``state``."""
        check_choice("prior", kind, PRIORS)
        bounds = np.vstack(state.label_bounds(PRIOR_MARGIN)) if kind == "uniform" else None
        return cls(kind, tuple(state.label_names), bounds, state.scaling.offsets,
                   NORMAL_PRIOR_WIDTH * state.scaling.scales)

    def describe(self) -> str:
        """The priors in words, e.g. ``"TEFF ~ Uniform(3800, 5400); ..."``."""
        if self.bounds is not None:
            return "; ".join(f"{name} ~ Uniform({lo:.4g}, {hi:.4g})"
                             for name, lo, hi in zip(self.names, *self.bounds, strict=True))
        return "; ".join(f"{name} ~ Normal({mu:.4g}, {sd:.4g})"
                         for name, mu, sd in zip(self.names, self.mu, self.sigma, strict=True))

    def log_prob(self, labels: np.ndarray) -> np.ndarray:
        """ln prior of physical ``labels`` (m, n_labels), shape (m,) (-inf outside)."""
        if self.bounds is not None:
            lo, hi = self.bounds
            inside = np.all((labels >= lo) & (labels <= hi), axis=1)
            return np.where(inside, -np.sum(np.log(hi - lo)), -np.inf)
        z = (labels - self.mu) / self.sigma
        return np.sum(-0.5 * z ** 2 - np.log(self.sigma) - 0.5 * np.log(2 * np.pi), axis=1)

    def grad(self, labels: np.ndarray) -> np.ndarray:
        """Gradient of :meth:`log_prob` (0 inside uniform priors), shape (m, n_labels)."""
        if self.bounds is not None:
            return np.zeros_like(labels)
        return -(labels - self.mu) / self.sigma ** 2

    def inside(self, initial: np.ndarray) -> np.ndarray:
        """Physical labels (n_labels,) or (m, n_labels), moved just inside a uniform prior's
        open interval (a best fit on a bound lies outside it)."""
        initial = np.asarray(initial, dtype=float)
        initial = initial if initial.ndim == 2 else np.ravel(initial)
        if self.bounds is None:
            return initial
        inset = 1e-6 * (self.bounds[1] - self.bounds[0])
        return np.clip(initial, self.bounds[0] + inset, self.bounds[1] - inset)

    def unconstrained(self, initial: np.ndarray) -> np.ndarray:
        """Physical labels (n_labels,) in a sampler's unconstrained space (logit of the
        position in a uniform prior's interval; normal priors are unbounded)."""
        initial = self.inside(initial)
        if self.bounds is None:
            return initial
        position = (initial - self.bounds[0]) / (self.bounds[1] - self.bounds[0])
        return np.log(position / (1 - position))


def spectrum_data(state, flux: np.ndarray, ivar: np.ndarray,
                  likelihood: str = "pixels") -> dict[str, np.ndarray]:
    """What the likelihood needs of one normalized spectrum, by name (the PyMC graph's data).

    Parameters
    ----------
    state : CannonState
    flux, ivar : ndarray, shape (n_pixels,)
        On the model's grid.
    likelihood : {"pixels", "quadratic"}, default="pixels"

    Returns
    -------
    dict
        "quadratic": ``G`` (k, k), ``h`` (k,), ``c`` (scalar array). "pixels": ``flux`` and
        ``sigma`` (n_pixels,) (masked pixels: 1 and :data:`MASKED_SIGMA`) and, with error
        factors, ``M_inverse`` (r, r).

    Raises
    ------
    ValueError
        No more usable pixels than labels.
    """
    check_choice("likelihood", likelihood, LIKELIHOODS)
    good = (ivar > 0) & np.isfinite(ivar) & np.isfinite(flux) & state.pixel_mask
    if good.sum() <= len(state.label_names):
        raise ValueError(f"only {good.sum()} usable pixels: cannot sample")
    factors = error_factors(state)
    if likelihood == "quadratic":
        stats = sufficient_statistics(state.theta, state.s2, state.pixel_mask, flux[None],
                                      ivar[None], factors=factors)
        return {"G": stats.G[0], "h": stats.h[0], "c": np.asarray(float(stats.c[0]))}
    sigma = np.where(good, np.sqrt(1 / np.where(good, ivar, 1) + state.s2), MASKED_SIGMA)
    data = {"flux": np.where(good, flux, 1.0), "sigma": sigma}
    if factors is not None:
        weight = np.where(good, sigma ** -2.0, 0.0)
        data["M_inverse"] = np.linalg.inv(factor_system(weight, factors)[0])
    return data


class LogPosterior:
    """ln p(labels | one spectrum) up to a constant, of physical labels.

    Parameters
    ----------
    state : CannonState
        A fitted model's learned state (``Cannon.state_``).
    flux, ivar : ndarray, shape (n_pixels,)
        One normalized spectrum on the model's grid.
    prior : {"uniform", "normal"} or LabelPriors, default="uniform"
    likelihood : {"pixels", "quadratic"}, default="pixels"

    Attributes
    ----------
    names : list of str
        The labels, in the order of the label vectors.
    priors : LabelPriors
    data : dict
        The spectrum's data (see :func:`spectrum_data`).
    """

    def __init__(self, state, flux: np.ndarray, ivar: np.ndarray, *, prior="uniform",
                 likelihood: str = "pixels") -> None:
        self.priors = prior if isinstance(prior, LabelPriors) else LabelPriors.of(state, prior)
        self.state = state
        self.likelihood = likelihood
        self.names = list(self.priors.names)
        self.data = spectrum_data(state, flux, ivar, likelihood)

    def log_prob(self, labels: np.ndarray):
        """ln posterior (up to a constant) of physical ``labels``.

        Parameters
        ----------
        labels : ndarray, shape (n_labels,) or (m, n_labels)

        Returns
        -------
        float, or ndarray of shape (m,)
            -inf outside a uniform prior.
        """
        value, _ = self._evaluate(labels, gradient=False)
        return value

    def log_prob_and_grad(self, labels: np.ndarray):
        """:meth:`log_prob` and its gradient with respect to the physical labels.

        Parameters
        ----------
        labels : ndarray, shape (n_labels,) or (m, n_labels)

        Returns
        -------
        value : float, or ndarray of shape (m,)
        gradient : ndarray, shape (n_labels,) or (m, n_labels)
        """
        return self._evaluate(labels, gradient=True)

    def _evaluate(self, labels: np.ndarray, *, gradient: bool):
        """ln posterior and (if asked) its gradient, shaped like ``labels``' rows."""
        labels = np.asarray(labels, dtype=float)
        batch = np.atleast_2d(labels)
        scaling, vectorizer = self.state.scaling, self.state.vectorizer
        scaled = scaling.scale(batch)
        chi2, d_chi2 = self._chi2(vectorizer.design_matrix(scaled), gradient)
        value = -0.5 * chi2 + self.priors.log_prob(batch)
        grad = None
        if gradient:
            per_scaled = np.einsum("mk,mkl->ml", -0.5 * d_chi2, vectorizer.jacobian(scaled))
            grad = per_scaled / scaling.scales + self.priors.grad(batch)
        if labels.ndim == 1:
            return float(value[0]), None if grad is None else grad[0]
        return value, grad

    def _chi2(self, design: np.ndarray, gradient: bool):
        """chi^2 at design vectors (m, k), shape (m,), and (if asked) d chi^2 / d v (m, k)."""
        data = self.data
        if self.likelihood == "quadratic":
            G, h = data["G"], data["h"]
            chi2 = data["c"] - 2 * design @ h + np.einsum("mk,kl,ml->m", design, G, design)
            return chi2, (design @ (G + G.T) - 2 * h) if gradient else None
        theta = self.state.theta
        residual = data["flux"] - design @ theta.T                       # (m, n_pixels)
        weighted = residual / data["sigma"] ** 2
        chi2 = np.einsum("mp,mp->m", weighted, residual)
        factors = error_factors(self.state)
        if factors is not None:
            m_inverse = 0.5 * (data["M_inverse"] + data["M_inverse"].T)
            y = weighted @ factors                                       # (m, r)
            chi2 = chi2 - np.einsum("mr,rs,ms->m", y, m_inverse, y)
            weighted = weighted - ((y @ m_inverse) @ factors.T) / data["sigma"] ** 2
        return chi2, (-2 * weighted @ theta) if gradient else None
