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
