"""The posterior of one spectrum's labels with the fits beyond the labels (issue #24): a radial
velocity sampled with the labels, a per-chip continuum polynomial marginalized, labels held
fixed.

With any of these options the chi^2 is no longer a quadratic form in the design vector (the
model is shifted and multiplied by a continuum), so the posterior is the pixel likelihood,
N(f | C(c) M(l, v), diag(sigma^2 + s^2) + U U^T), evaluated pixel by pixel: in numpy by
:class:`NuisancePosterior` (reusing the pixel-space fit's functions of
:mod:`skcannon.inference.nuisance`) and, for the NUTS back ends, as a PyMC model
(:func:`skcannon.inference.pymc_graph.build_nuisance_model`), the same function of the
parameters up to a constant (a test checks it).

* **Radial velocity** (km/s, + = redshift): uniform prior within ``rv_bounds``. The model is
  shifted as :mod:`skcannon.inference.doppler` shifts it: the spectrum is first moved back by
  the whole number of pixels of the joint optimizer's RV (:func:`~skcannon.inference.nuisance.
  fit_labels_nuisance`), then the model's cubic B-spline coefficients are read at p - delta
  for the remaining shift. The sampled range is ``rv_bounds`` cut to
  :data:`~skcannon.inference.nuisance.SHIFT_WINDOW` pixels (about +-8 km/s on the APOGEE grid)
  around that whole-pixel start: the posterior of any spectrum with lines is far narrower
  (about 0.1 km/s at SNR 50), so the cut changes nothing but the sampler's search.
* **Continuum** (``continuum_order=k``): the Legendre coefficients of each chip are
  **marginalized analytically** under a flat prior: ln p = -chi^2_profile / 2 - ln det(A^T
  C^-1 A) / 2, with A the model times the polynomials, chi^2_profile the chi^2 at their
  generalized least squares solution (the profile of the optimizer); not sampled.
* **Fixed labels** (``fixed={"LOGG": 4.4}``): held at the value, not sampled; they are
  reported with the draws (every draw equal to the value).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skcannon.inference.doppler import SHIFT_REACH, SegmentGrid
from skcannon.inference.nuisance import (
    SHIFT_WINDOW,
    Nuisance,
    _Metric,
    _model,
    _move_back,
    _profile,
    _usable,
    fit_labels_nuisance,
)
from skcannon.inference.options import DEFAULT_RV_BOUNDS, check_nuisance_options
from skcannon.inference.posterior import LabelPriors

#: The name of the radial velocity in the draws and summaries (as the schema's RV column).
RV_NAME = "RV"
#: The variable sampled for it: its position in the window, uniform in (0, 1).
RV_UNIT_NAME = "RV_unit"


@dataclass(frozen=True)
class NuisanceSetup:
    """What the posterior samples besides the classic labels, for one model (built once).

    Attributes
    ----------
    state : CannonState
    nuisance : Nuisance
        The grid, continuum basis and RV switch, as the pixel-space fit takes them.
    rv_bounds : tuple of float
        km/s.
    continuum_order : int or None
    fixed : dict of str to float
        Labels held fixed and their values.
    free : list of int
        Indices of the sampled labels.
    priors : LabelPriors
        The priors of the sampled labels.
    coef : ndarray, shape (n_pixels, k)
        The model's coefficients (cubic B-spline coefficients with an RV).
    """

    state: object
    nuisance: Nuisance
    rv_bounds: tuple
    continuum_order: int | None
    fixed: dict
    free: list
    priors: LabelPriors
    coef: np.ndarray

    @property
    def fit_rv(self) -> bool:
        """Whether a radial velocity is sampled."""
        return self.nuisance.fit_rv

    @property
    def names(self) -> list[str]:
        """Every reported variable: the labels (model order), then ``RV`` when sampled."""
        return list(self.state.label_names) + ([RV_NAME] if self.fit_rv else [])

    @property
    def sampled(self) -> list[str]:
        """The sampled variables: the free labels, then ``RV`` when sampled."""
        return list(self.priors.names) + ([RV_NAME] if self.fit_rv else [])


def nuisance_setup(state, priors: LabelPriors, *, fit_rv: bool = False,
                   rv_bounds=DEFAULT_RV_BOUNDS, continuum_order: int | None = None,
                   fixed: dict | None = None) -> NuisanceSetup | None:
    """The setup of the options, or None when none is asked (the classic posterior).

    Parameters
    ----------
    state : CannonState
    priors : LabelPriors
        The priors of all labels (those of the fixed ones are dropped).
    fit_rv : bool, default=False
    rv_bounds : tuple of float, default=(-400.0, 400.0)
    continuum_order : int or None, default=None
    fixed : dict of str to float, default=None
        One finite value per fixed label.

    Returns
    -------
    NuisanceSetup or None

    Raises
    ------
    ValueError
        An option out of range (naming it), every label fixed, or ``fit_rv`` without a
        wavelength grid.
    """
    names = list(state.label_names)
    checked = check_nuisance_options(names, 1, fixed=fixed, fit_rv=fit_rv,
                                     rv_bounds=rv_bounds, continuum_order=continuum_order)
    values = checked["fixed"]
    if values is not None and not np.all(np.isfinite(values[0][[names.index(n)
                                                                for n in fixed]])):
        raise ValueError("fixed: the posterior needs one finite value per fixed label")
    fixed = {} if values is None else {n: float(values[0, names.index(n)]) for n in fixed}
    if not (fit_rv or continuum_order is not None or fixed):
        return None
    free = [i for i, n in enumerate(names) if n not in fixed]
    if not free:
        raise ValueError("fixed: every label is fixed; nothing to sample")
    grid = SegmentGrid.from_wavelength(
        state.wavelength if (fit_rv or continuum_order is not None) else None,
        state.theta.shape[0])
    if fit_rv and not np.isfinite(grid.dlog):
        raise ValueError("fit_rv needs a model with a wavelength grid (fit it with the "
                         "spectra's wavelength)")
    basis = None if continuum_order is None else grid.continuum_basis(int(continuum_order))
    nuisance = Nuisance(grid, np.full((1, len(names)), np.nan),
                        np.full((1, len(names)), np.nan), bool(fit_rv), (0, 0), basis)
    sub = LabelPriors(priors.kind, tuple(names[i] for i in free),
                      None if priors.bounds is None else priors.bounds[:, free],
                      np.asarray(priors.mu)[free], np.asarray(priors.sigma)[free])
    coef = grid.spline_coefficients(state.theta) if fit_rv else state.theta
    return NuisanceSetup(state, nuisance, checked["rv_bounds"], continuum_order, fixed, free,
                         sub, coef)


class NuisancePosterior:
    """ln p(free labels, RV | one spectrum) up to a constant (see the module notes).

    Building it runs the joint optimizer on the spectrum (its best fit starts the chains, its
    whole-pixel RV places the window) and moves the spectrum back by that many pixels.

    Parameters
    ----------
    setup : NuisanceSetup
    flux, ivar : ndarray, shape (n_pixels,)
        One normalized spectrum on the model's grid (observed frame).
    fixed : dict of str to float, optional
        This spectrum's values of (some of) the setup's fixed labels (default: the setup's).

    Attributes
    ----------
    names : list of str
        The sampled variables (free labels, then ``RV``).
    data : dict
        What the PyMC model swaps in: ``flux``, ``var`` (the data's variance), ``usable``
        (n_pixels,), and ``rv_low``, ``rv_high``, ``moved`` with an RV, ``fixed_values``
        with fixed labels.
    best : ndarray, shape (n_sampled,)
        The joint optimizer's best fit (free labels, then RV).
    """

    def __init__(self, setup: NuisanceSetup, flux: np.ndarray, ivar: np.ndarray,
                 fixed: dict | None = None) -> None:
        state, names = setup.state, list(setup.state.label_names)
        self.setup, self.names, self.priors = setup, setup.sampled, setup.priors
        self.fixed_values = {**setup.fixed, **(fixed or {})}
        if set(self.fixed_values) != set(setup.fixed) or not np.all(
                np.isfinite(list(self.fixed_values.values()))):
            raise ValueError(f"fixed: one finite value for each of {list(setup.fixed)}; got "
                             f"{fixed!r}")
        fixed = np.full((1, len(names)), np.nan)
        for name, value in self.fixed_values.items():
            fixed[0, names.index(name)] = value
        fit = fit_labels_nuisance(state, flux[None], ivar[None], fixed=fixed,
                                  fit_rv=setup.fit_rv, rv_bounds=setup.rv_bounds,
                                  continuum_order=setup.continuum_order)
        grid = setup.nuisance.grid
        if not np.all(np.isfinite(fit.labels)) or (setup.fit_rv and not np.isfinite(fit.rv[0])):
            raise ValueError("the joint fit that starts the chains failed (too few usable "
                             "pixels?)")
        moved = int(np.rint(grid.shift(fit.rv[0]))) if setup.fit_rv else 0
        flux, ivar = _move_back(grid, flux[None], ivar[None], np.array([moved]))
        usable = _usable(state, setup.nuisance, flux, ivar)[0]
        self.data = {"flux": np.where(usable, flux[0], 0.0),
                     "var": np.where(usable, 1.0 / np.where(usable, ivar[0], 1.0), 1.0),
                     "usable": usable.astype(float)}
        if setup.fixed:
            self.data["fixed_values"] = np.array([self.fixed_values[n] for n in setup.fixed])
        self.best = fit.labels[0, setup.free]
        if setup.fit_rv:
            low = max(setup.rv_bounds[0], float(grid.velocity(moved - SHIFT_WINDOW)))
            high = min(setup.rv_bounds[1], float(grid.velocity(moved + SHIFT_WINDOW)))
            self.data.update(rv_low=np.asarray(low), rv_high=np.asarray(high),
                             moved=np.asarray(float(moved)))
            self.best = np.r_[self.best, np.clip(fit.rv[0], low, high)]
        if usable.sum() <= len(self.names):
            raise ValueError(f"only {usable.sum()} usable pixels: cannot sample")

    def log_prob(self, params: np.ndarray):
        """ln posterior (up to a constant) of the sampled variables.

        Parameters
        ----------
        params : ndarray, shape (n_sampled,) or (m, n_sampled)
            Free labels (physical), then RV (km/s).

        Returns
        -------
        float, or ndarray of shape (m,)
            -inf outside a uniform prior or the RV window.
        """
        params = np.asarray(params, float)
        batch = np.atleast_2d(params)
        setup, data = self.setup, self.data
        n_free = len(setup.free)
        value = self.priors.log_prob(batch[:, :n_free]) + self._log_likelihood(batch)
        if setup.fit_rv:
            rv = batch[:, n_free]
            inside = (rv >= data["rv_low"]) & (rv <= data["rv_high"])
            value = np.where(inside, value, -np.inf)
        return float(value[0]) if params.ndim == 1 else value

    def _log_likelihood(self, batch: np.ndarray) -> np.ndarray:
        """ln p(spectrum | parameters) (m,), the continuum marginalized, up to a constant."""
        setup, data, state = self.setup, self.data, self.setup.state
        labels = np.tile(state.scaling.offsets, (len(batch), 1)).astype(float)
        labels[:, setup.free] = batch[:, :len(setup.free)]
        for name, value in self.fixed_values.items():
            labels[:, list(state.label_names).index(name)] = value
        delta = None
        if setup.fit_rv:
            rv = np.clip(batch[:, len(setup.free)], data["rv_low"], data["rv_high"])
            delta = setup.nuisance.grid.shift(rv) - data["moved"]
        model, s2, _ = _model(state, setup.nuisance, setup.coef, state.scaling.scale(labels),
                              delta, False)
        usable = data["usable"] > 0
        var = data["var"] + s2
        weight = np.where(usable, 1.0 / var, 0.0)
        metric = _Metric(weight, state.error_factors)
        flux = np.broadcast_to(data["flux"], model.shape)
        continuum, normal = _profile(model, metric, flux, setup.nuisance.basis)
        residual = np.where(usable, flux - continuum * model, 0.0)[:, :, None]
        log_det = np.sum(np.where(usable, np.log(var), 0.0), axis=1)
        if metric.factors is not None:
            log_det += np.linalg.slogdet(metric.M)[1]
        if normal is not None:
            log_det += np.linalg.slogdet(normal[1])[1]
        return -0.5 * (metric.inner(residual, residual)[:, 0, 0] + log_det)

    def initvals(self) -> dict[str, float]:
        """The PyMC model's starting point (the joint best fit, inside the priors), by name."""
        values = self.priors.inside(self.best[:len(self.setup.free)])
        start = dict(zip(self.priors.names, map(float, values), strict=True))
        if self.setup.fit_rv:
            start[RV_UNIT_NAME] = float(np.clip(self._rv_unit(self.best[-1]), 1e-6, 1 - 1e-6))
        return start

    def unconstrained(self) -> np.ndarray:
        """The starting point in the sampler's unconstrained space (logit of the position
        in each uniform interval), in the order of the model's free variables."""
        start = self.initvals()
        free = self.priors.unconstrained(np.array([start[n] for n in self.priors.names]))
        if not self.setup.fit_rv:
            return free
        unit = start[RV_UNIT_NAME]
        return np.r_[free, np.log(unit / (1 - unit))]

    def _rv_unit(self, rv: float) -> float:
        """The position of ``rv`` in the window (0 ... 1)."""
        low, high = float(self.data["rv_low"]), float(self.data["rv_high"])
        return (rv - low) / (high - low)


def shift_kernel(x):
    """The cubic B-spline kernel beta3(x) (numpy or PyTensor): the weight of a coefficient at
    distance ``x`` pixels (the four taps of :meth:`SegmentGrid.shift_weights`)."""
    import pytensor.tensor as pt

    a = pt.abs(x)
    inner = 2.0 / 3.0 - a ** 2 + 0.5 * a ** 3
    outer = (2.0 - a) ** 3 / 6.0
    return pt.switch(a < 1.0, inner, pt.switch(a < 2.0, outer, 0.0))


#: Offsets (pixels) a shifted model reads, as :func:`~skcannon.inference.doppler.apply_shift`.
SHIFT_OFFSETS = np.arange(-SHIFT_REACH, SHIFT_REACH + 1)
