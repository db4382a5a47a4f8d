"""The posterior of one spectrum's labels as a PyMC model (PyMC imported lazily; ``pip install
skcannon[mcmc]``), for the PyMC-based samplers of :mod:`skcannon.inference.samplers`.

The Cannon's prediction is written in PyTensor: physical labels -> scaled labels -> design vector
(every term a product of at most ``order`` factors from [1, scaled labels], gathered by index
arrays) -> model flux = Theta v for every pixel at once, or the quadratic form of chi^2 in v.
The spectrum enters only as ``pm.Data`` (named as :func:`skcannon.inference.posterior.
spectrum_data` names them), so one compiled model serves every spectrum.
"""

from __future__ import annotations

import numpy as np

from skcannon.inference.doppler import SPEED_OF_LIGHT
from skcannon.inference.posterior import LIKELIHOODS, LabelPriors, check_choice, error_factors


def build_pymc_model(state, priors: LabelPriors, likelihood: str = "pixels"):
    """The PyMC model of one spectrum's labels (data: placeholders until ``pm.set_data``).

    Parameters
    ----------
    state : CannonState
        A fitted model's learned state (``Cannon.state_``).
    priors : LabelPriors
    likelihood : {"pixels", "quadratic"}, default="pixels"

    Returns
    -------
    pymc.Model
        One free variable per label (named as the labels, physical units); the likelihood as
        an observed ``obs`` ("pixels" without error factors) or a ``loglike`` potential.
    """
    import pymc as pm
    import pytensor.tensor as pt

    check_choice("likelihood", likelihood, LIKELIHOODS)
    factors = error_factors(state)
    with pm.Model() as model:
        data = _declare_data(state, likelihood, factors)
        labels = _prior_variables(priors)
        scaled = (pt.stack(labels) - state.scaling.offsets) / state.scaling.scales
        design = _design_vector(state.vectorizer.terms, scaled)
        if likelihood == "pixels" and factors is None:
            mean = pt.dot(state.theta, design)               # all pixels at once
            pm.Normal("obs", mu=mean, sigma=data["sigma"], observed=data["flux"])
        elif likelihood == "pixels":
            residual = data["flux"] - pt.dot(state.theta, design)
            weighted = residual / data["sigma"] ** 2
            y = pt.dot(factors.T, weighted)
            chi2 = pt.sum(weighted * residual) - pt.dot(y, pt.dot(data["M_inverse"], y))
            pm.Potential("loglike", -0.5 * chi2)
        else:
            chi2 = (data["c"] - 2 * pt.dot(data["h"], design)
                    + pt.dot(design, pt.dot(data["G"], design)))
            pm.Potential("loglike", -0.5 * chi2)
    return model


def _declare_data(state, likelihood: str, factors: np.ndarray | None) -> dict:
    """The spectrum's ``pm.Data`` placeholders (inside a model context), by name."""
    import pymc as pm

    n_pixels, k = state.theta.shape
    if likelihood == "quadratic":
        return {"G": pm.Data("G", np.eye(k)), "h": pm.Data("h", np.zeros(k)),
                "c": pm.Data("c", 0.0)}
    data = {"flux": pm.Data("flux", np.ones(n_pixels)),
            "sigma": pm.Data("sigma", np.ones(n_pixels))}
    if factors is not None:
        data["M_inverse"] = pm.Data("M_inverse", np.eye(factors.shape[1]))
    return data


def _prior_variables(priors: LabelPriors) -> list:
    """One free variable per label with its prior (inside a model context), in label order."""
    import pymc as pm

    labels = []
    for i, name in enumerate(priors.names):
        if priors.bounds is not None:
            lo, hi = priors.bounds[:, i]
            labels.append(pm.Uniform(name, lower=lo, upper=hi))
        else:
            labels.append(pm.Normal(name, mu=priors.mu[i], sigma=priors.sigma[i]))
    return labels


def _design_vector(terms: list[tuple[int, ...]], scaled):
    """The design vector (k,) of the scaled labels (a PyTensor vector): every term a product of
    at most ``width`` factors from [1, scaled labels...], a few gathers and products instead of
    one node per term (a small graph compiles several times faster with numba)."""
    import pytensor.tensor as pt

    width = max(1, max(len(t) for t in terms))
    term_factors = np.zeros((width, len(terms)), dtype=np.int64)   # 0 = the constant 1
    for j, term in enumerate(terms):
        term_factors[: len(term), j] = np.asarray(term, dtype=np.int64) + 1
    factors = pt.concatenate([pt.ones(1), scaled])
    design = factors[term_factors[0]]
    for row in term_factors[1:]:
        design = design * factors[row]
    return design


def build_nuisance_model(setup):
    """The PyMC model of one spectrum's labels with a radial velocity, a marginalized
    continuum and fixed labels (:mod:`skcannon.inference.posterior_nuisance`; data:
    placeholders until ``pm.set_data``).

    Parameters
    ----------
    setup : NuisanceSetup

    Returns
    -------
    pymc.Model
        A free variable per free label (physical units) and, with an RV, ``RV_unit`` ~
        Uniform(0, 1) with ``RV`` (km/s) its deterministic image on the window; fixed labels
        as deterministics equal to their values; the pixel likelihood as a ``loglike``
        potential.
    """
    import pymc as pm
    import pytensor.tensor as pt

    from skcannon.inference.posterior_nuisance import RV_NAME, RV_UNIT_NAME

    state, names = setup.state, list(setup.state.label_names)
    n_pixels = state.theta.shape[0]
    with pm.Model() as model:
        data = {"flux": pm.Data("flux", np.ones(n_pixels)),
                "var": pm.Data("var", np.ones(n_pixels)),
                "usable": pm.Data("usable", np.ones(n_pixels))}
        free = iter(_prior_variables(setup.priors))
        fixed = list(setup.fixed)
        if fixed:
            values = pm.Data("fixed_values", np.zeros(len(fixed)))
            labels = [values[fixed.index(n)] if n in fixed else next(free) for n in names]
            for n in fixed:
                pm.Deterministic(n, values[fixed.index(n)])
        else:
            labels = list(free)
        scaled = (pt.stack(labels) - state.scaling.offsets) / state.scaling.scales
        design = _design_vector(state.vectorizer.terms, scaled)
        if setup.fit_rv:
            low, high = pm.Data("rv_low", 0.0), pm.Data("rv_high", 1.0)
            moved = pm.Data("moved", 0.0)
            rv = pm.Deterministic(RV_NAME, low + (high - low) * pm.Uniform(RV_UNIT_NAME, 0, 1))
            delta = pt.log10(1.0 + rv / SPEED_OF_LIGHT) / setup.nuisance.grid.dlog - moved
            mean, s2 = _shifted(setup, design, delta)
        else:
            mean, s2 = pt.dot(setup.coef, design), pt.as_tensor(state.s2)
        pm.Potential("loglike", _marginal_loglike(setup, data, mean, s2))
    return model


def _shifted(setup, design, delta):
    """The model (n_pixels,) and s^2 read at p - ``delta`` (cubic B-spline coefficients,
    edges padded as :func:`skcannon.inference.doppler.apply_shift` pads them)."""
    import pytensor.tensor as pt

    from skcannon.inference.doppler import SHIFT_REACH
    from skcannon.inference.posterior_nuisance import SHIFT_OFFSETS, shift_kernel

    n_pixels = setup.coef.shape[0]
    pad = ((SHIFT_REACH, SHIFT_REACH), (0, 0))
    model_all = pt.dot(np.pad(setup.coef, pad, mode="edge"), design)
    s2_all = np.pad(setup.state.s2, SHIFT_REACH, mode="edge")
    weights = shift_kernel(SHIFT_OFFSETS + delta)        # offset o: beta3(o - position)
    mean = sum(weights[j] * model_all[j:j + n_pixels] for j in range(len(SHIFT_OFFSETS)))
    s2 = sum(weights[j] * s2_all[j:j + n_pixels] for j in range(len(SHIFT_OFFSETS)))
    return mean, pt.maximum(s2, 0.0)


def _marginal_loglike(setup, data, mean, s2):
    """ln N(f | C M, W^-1 + U U^T) with the continuum C's coefficients marginalized under a
    flat prior (up to a constant), as a PyTensor scalar."""
    import pytensor.tensor as pt

    var = data["var"] + s2
    weight = data["usable"] / var
    factors = error_factors(setup.state)
    if factors is not None:
        m_matrix = pt.eye(factors.shape[1]) + pt.dot(factors.T * weight, factors)

    def inner(a, b):
        """a^T C^-1 b of matrices (n_pixels, i), (n_pixels, j)."""
        out = pt.dot(a.T * weight, b)
        if factors is None:
            return out
        ua, ub = pt.dot(factors.T * weight, a), pt.dot(factors.T * weight, b)
        return out - pt.dot(ua.T, pt.linalg.solve(m_matrix, ub))

    flux = (data["usable"] * data["flux"])[:, None]
    log_det = pt.sum(data["usable"] * pt.log(var))
    if factors is not None:
        log_det += pt.log(pt.linalg.det(m_matrix))
    if setup.nuisance.basis is None:
        residual = flux - (data["usable"] * mean)[:, None]
        return -0.5 * (inner(residual, residual)[0, 0] + log_det)
    design = (data["usable"] * mean)[:, None] * setup.nuisance.basis       # (n_pixels, J)
    normal = inner(design, design)
    projection = inner(design, flux)
    chi2 = inner(flux, flux)[0, 0] - pt.dot(projection[:, 0],
                                            pt.linalg.solve(normal, projection[:, 0]))
    return -0.5 * (chi2 + log_det + pt.log(pt.linalg.det(normal)))
