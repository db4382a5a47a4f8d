"""The numpy log-posterior of one spectrum: the model's likelihood and the priors, with an
exact gradient, one vector or a batch at a time."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from skcannon.data.simulate import simulate_spectra
from skcannon.inference.posterior import LIKELIHOODS, PRIORS, LabelPriors, LogPosterior


@pytest.fixture(scope="module")
def factor_model(reference_model):
    """A model with 4 error factors (correlated pixel errors), and its training spectra."""
    from skcannon.model import Cannon

    rng = np.random.default_rng(4)
    truth = np.column_stack([rng.uniform(4300, 5000, 120), rng.uniform(1.5, 3.2, 120),
                             rng.uniform(-0.5, 0.2, 120), rng.uniform(0, 0.2, 120)])
    X = simulate_spectra(reference_model, truth, 100, rng)
    model = Cannon(reference_model.label_names, n_error_factors=4).fit(truth, X)
    assert model.error_factors_.shape[1] == 4
    return model, truth, X


POINTS = np.array([[0, 0, 0, 0], [30, 0.1, 0.02, 0.01], [-50, -0.2, 0.05, -0.02]])


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_log_posterior_is_the_model_likelihood_times_the_prior(factor_model, likelihood):
    """With error factors and normal priors, log_prob = Cannon.log_likelihood + the priors'
    log-density, up to a constant (both likelihood forms)."""
    model, truth, X = factor_model
    star = X[0]
    points = truth[:1] + POINTS
    posterior = LogPosterior(model.state_, star[0], star[1], prior="normal",
                             likelihood=likelihood)
    values = posterior.log_prob(points)
    offsets, scales = model.scaling_.offsets, model.scaling_.scales
    exact = (model.log_likelihood(points, np.repeat(star[None], len(points), axis=0))
             + norm.logpdf(points, offsets, 2 * scales).sum(axis=1))
    differences = values - exact
    np.testing.assert_allclose(differences - differences[0], 0, atol=1e-6)
    for point, value in zip(points, values, strict=True):           # one vector: a float
        assert posterior.log_prob(point) == pytest.approx(value, rel=1e-10)


@pytest.mark.parametrize("prior", PRIORS)
@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("factors", [False, True])
def test_gradient_matches_finite_differences(reference_model, factor_model, prior,
                                             likelihood, factors):
    model, truth, X = factor_model if factors else (reference_model, *factor_model[1:])
    posterior = LogPosterior(model.state_, X[1, 0], X[1, 1], prior=prior,
                             likelihood=likelihood)
    x = truth[1] + np.array([20.0, 0.05, 0.01, 0.01])
    value, gradient = posterior.log_prob_and_grad(x)
    assert value == pytest.approx(posterior.log_prob(x), rel=1e-10)
    steps = 1e-5 * model.scaling_.scales
    numeric = [(posterior.log_prob(x + step) - posterior.log_prob(x - step)) / (2 * step[i])
               for i, step in enumerate(np.diag(steps))]
    # the quadratic form's constant c is large: its differences lose ~5 digits
    np.testing.assert_allclose(gradient, numeric, rtol=1e-3 if likelihood == "quadratic"
                               else 1e-5)
    values, gradients = posterior.log_prob_and_grad(np.vstack([x, x + steps]))
    np.testing.assert_allclose(gradients[0], gradient, rtol=1e-9)
    assert values.shape == (2,) and gradients.shape == (2, 4)


def test_uniform_priors_bound_the_posterior(reference_model, factor_model):
    _, truth, X = factor_model
    state = reference_model.state_
    priors = LabelPriors.of(state, "uniform")
    np.testing.assert_allclose(priors.bounds, np.vstack(state.label_bounds(0.1)))
    assert priors.describe().startswith("TEFF ~ Uniform(")
    posterior = LogPosterior(state, X[2, 0], X[2, 1], prior=priors, likelihood="quadratic")
    outside = priors.bounds[1] + 1.0
    assert posterior.log_prob(outside) == -np.inf
    assert np.isfinite(posterior.log_prob(truth[2]))
    inside = priors.inside(outside)
    assert np.all(inside < priors.bounds[1]) and np.isfinite(posterior.log_prob(inside))


def test_bad_choices_and_unusable_spectra_are_clear(reference_model, factor_model):
    _, _, X = factor_model
    state = reference_model.state_
    with pytest.raises(ValueError, match="prior must be 'uniform' or 'normal', got 'flat'"):
        LogPosterior(state, X[0, 0], X[0, 1], prior="flat")
    with pytest.raises(ValueError, match="likelihood must be 'pixels' or 'quadratic'"):
        LogPosterior(state, X[0, 0], X[0, 1], likelihood="poisson")
    with pytest.raises(ValueError, match="only 0 usable pixels"):
        LogPosterior(state, X[0, 0], np.zeros_like(X[0, 1]))
