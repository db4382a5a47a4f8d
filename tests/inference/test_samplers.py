"""Posterior back ends behind one interface: the registry, a toy back end used through
CannonPosterior, and emcee on the numpy log-posterior (no PyMC needed)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from skcannon.data.simulate import simulate_spectra
from skcannon.inference.mcmc import CannonPosterior
from skcannon.inference.samplers import SAMPLERS, register_sampler


@pytest.fixture(scope="module")
def star(reference_model):
    """One spectrum at SNR 120, and the optimizer's best fit with its uncertainties."""
    truth = np.array([[4650.0, 2.4, -0.3, 0.1]])
    X = simulate_spectra(reference_model, truth, np.array([120.0]), np.random.default_rng(4))
    return X[0], reference_model.infer_labels(X)


class LaplaceSampler:
    """A toy back end: independent normal draws around ``initial`` whose widths come from the
    numpy log-posterior's curvature (finite differences of its gradient)."""

    def __init__(self, state, priors, likelihood):
        self.scales = state.scaling.scales

    def draw(self, problem, *, draws, tune, chains, seed, initial, progressbar, cores=None):
        import arviz as az

        steps = 1e-4 * self.scales
        curvature = np.array([(problem.log_prob_and_grad(initial + step)[1][i]
                               - problem.log_prob_and_grad(initial - step)[1][i]) / (2 * step[i])
                              for i, step in enumerate(np.diag(steps))])
        sd = 1 / np.sqrt(-curvature)
        rng = np.random.default_rng(seed)
        values = initial + sd * rng.standard_normal((chains, draws, len(initial)))
        return az.from_dict(
            posterior={name: values[:, :, i] for i, name in enumerate(problem.names)},
            sample_stats={"diverging": np.zeros((chains, draws), dtype=bool)})


@pytest.fixture
def laplace():
    register_sampler("laplace", LaplaceSampler)
    yield LaplaceSampler
    del SAMPLERS["laplace"]


def test_a_registered_back_end_is_used_by_cannon_posterior(reference_model, star, laplace):
    spectrum, fit = star
    sampler = CannonPosterior(reference_model, likelihood="quadratic", sampler="laplace")
    assert isinstance(sampler.backend, LaplaceSampler)
    post = sampler.sample(spectrum[0], spectrum[1], draws=2000, chains=2,
                          initial=fit.labels[0])
    summary = post.summary
    np.testing.assert_allclose(summary["mean"], fit.labels[0],
                               atol=0.1 * fit.formal_uncertainties[0].max())
    # the diagonal curvature gives conditional widths: at most the marginal (formal) ones
    assert np.all(summary["sd"] <= 1.1 * fit.formal_uncertainties[0])
    assert np.all(summary["sd"] >= 0.2 * fit.formal_uncertainties[0])
    assert post.priors.startswith("TEFF ~ Uniform(") and post.divergences == 0
    with pytest.raises(ValueError, match="builds no PyMC model"):
        sampler.set_spectrum(spectrum[0], spectrum[1])


def test_unknown_and_malformed_samplers_are_clear(reference_model, laplace):
    with pytest.raises(ValueError, match="sampler must be one of 'nutpie', 'pymc', 'emcee', "
                                         "'laplace', got 'gibbs'"):
        CannonPosterior(reference_model, sampler="gibbs")
    with pytest.raises(ValueError, match="already registered"):
        register_sampler("laplace", LaplaceSampler)
    with pytest.raises(ValueError, match="has no draw method"):
        register_sampler("nothing", object)
    assert "nothing" not in SAMPLERS


def test_sampler_choices_on_the_command_line_come_from_the_registry(laplace):
    from skcannon.cli import build_parser

    args = build_parser().parse_args(["posterior", "s.fits", "--model", "m.h5", "--sampler",
                                      "laplace", "--prior", "normal", "--likelihood", "pixels"])
    assert (args.sampler, args.prior, args.likelihood) == ("laplace", "normal", "pixels")


@pytest.mark.parametrize("likelihood", ["quadratic", "pixels"])
def test_emcee_recovers_the_posterior(reference_model, star, likelihood):
    """emcee on LogPosterior.log_prob: at SNR 120 the posterior is nearly the optimizer's
    Gaussian (best fit, formal covariance): means within a fraction of a sd, widths within
    25 %, from the training mean or from the best fit."""
    pytest.importorskip("emcee")
    spectrum, fit = star
    sampler = CannonPosterior(reference_model, likelihood=likelihood, sampler="emcee")
    sigma = fit.formal_uncertainties[0]
    for initial in (None, fit.labels[0]):
        post = sampler.sample(spectrum[0], spectrum[1], draws=600, tune=600, chains=4, seed=2,
                              initial=initial)
        summary = post.summary
        assert np.all(np.abs(summary["mean"] - fit.labels[0]) < 0.3 * sigma), summary
        np.testing.assert_allclose(summary["sd"], sigma, rtol=0.25)
        assert post.idata.posterior.sizes["chain"] == 16         # 4 walkers per label


def test_emcee_does_not_import_pymc(reference_model, tmp_path):
    """A back end that needs no PyMC never imports it."""
    pytest.importorskip("emcee")
    model = tmp_path / "ref.h5"
    reference_model.save(model)
    code = (
        "import sys, numpy as np\n"
        "from skcannon.model import Cannon\n"
        "from skcannon.inference.mcmc import CannonPosterior\n"
        f"model = Cannon.load({str(model)!r})\n"
        "flux = model.predict([[4650.0, 2.4, -0.3, 0.1]])[0]\n"
        "sampler = CannonPosterior(model, likelihood='quadratic', sampler='emcee')\n"
        "post = sampler.sample(flux, np.full_like(flux, 1e4), draws=50, tune=50)\n"
        "print(sorted(m for m in ('pymc', 'pytensor', 'nutpie') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
