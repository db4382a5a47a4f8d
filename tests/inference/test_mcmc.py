"""PyMC posteriors: the two likelihood forms agree, intervals cover the truth, the CLI works."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

pytest.importorskip("pymc")

from skcannon.data.simulate import simulate_spectra  # noqa: E402
from skcannon.inference.mcmc import CannonPosterior  # noqa: E402


def _logp(posterior: CannonPosterior, flux, ivar, points, jacobian: bool = True):

    posterior.set_spectrum(flux, ivar)
    with posterior.pymc_model:
        logp = posterior.pymc_model.compile_logp(jacobian=jacobian)
        values = []
        for point in points:
            ip = posterior.pymc_model.initial_point()
            for name, value in zip(posterior.names, point, strict=True):
                rv = posterior.pymc_model[name]
                transform = posterior.pymc_model.rvs_to_transforms[rv]
                key = posterior.pymc_model.rvs_to_values[rv].name
                ip[key] = (transform.forward(value, *rv.owner.inputs).eval()
                           if transform is not None else value)
            values.append(float(logp(ip)))
    return np.array(values)


def test_pixel_and_quadratic_likelihoods_agree(reference_model):
    truth = np.array([[4700.0, 2.5, -0.2, 0.1]])
    X = simulate_spectra(reference_model, truth, 100, np.random.default_rng(0))
    points = truth + np.array([[0, 0, 0, 0], [30, 0.1, 0.02, 0.01], [-50, -0.2, 0.05, -0.02]])
    pixels = _logp(CannonPosterior(reference_model, likelihood="pixels"), X[0, 0], X[0, 1],
                   points)
    quadratic = _logp(CannonPosterior(reference_model, likelihood="quadratic"), X[0, 0],
                      X[0, 1], points)
    differences = pixels - quadratic                   # equal up to a constant
    np.testing.assert_allclose(differences - differences[0], 0, atol=1e-6)
    assert pixels[0] > pixels[1] and pixels[0] > pixels[2]


def test_the_default_likelihood_is_the_exact_quadratic_form(reference_model):
    """The default is the quadratic form (exact, O(k^2) per gradient), as the CLI's."""
    posterior = CannonPosterior(reference_model, sampler="emcee")
    assert posterior.likelihood == "quadratic"
    flux = np.ones(reference_model.theta_.shape[0])
    assert set(posterior.spectrum_data(flux, np.full_like(flux, 1e4))) == {"G", "h", "c"}


def test_likelihoods_with_error_factors_agree_with_the_model(reference_model):
    """With error factors the pixel likelihood (Woodbury in PyTensor), the quadratic one and
    Cannon.log_likelihood (multivariate normal) are the same function of the labels."""
    from skcannon.model import Cannon

    rng = np.random.default_rng(4)
    truth = np.column_stack([rng.uniform(4300, 5000, 120), rng.uniform(1.5, 3.2, 120),
                             rng.uniform(-0.5, 0.2, 120), rng.uniform(0, 0.2, 120)])
    X = simulate_spectra(reference_model, truth, 100, rng)
    model = Cannon(reference_model.label_names, n_error_factors=4).fit(truth, X)
    assert model.error_factors_.shape[1] == 4
    points = truth[:1] + np.array([[0, 0, 0, 0], [30, 0.1, 0.02, 0.01], [-50, -0.2, 0.05, 0]])
    star = X[0]
    # normal priors: no interval transform, so logp = log-likelihood + the priors' log-density
    pixels = _logp(CannonPosterior(model, prior="normal", likelihood="pixels"), star[0],
                   star[1], points)
    quadratic = _logp(CannonPosterior(model, prior="normal", likelihood="quadratic"), star[0],
                      star[1], points)
    offsets, scales = model.scaling_.offsets, model.scaling_.scales
    exact = (model.log_likelihood(points, np.repeat(star[None], len(points), axis=0))
             + norm.logpdf(points, offsets, 2 * scales).sum(axis=1))
    for other in (quadratic, exact):                    # equal up to a constant
        differences = pixels - other
        np.testing.assert_allclose(differences - differences[0], 0, atol=1e-6)


@pytest.mark.slow
def test_68_percent_intervals_cover_the_truth(reference_model, giant_labels):
    """50 spectra simulated at known labels: the 16-84 % interval covers the truth in about
    68 % of the 200 (spectrum, label) cases; the posterior mean agrees with the optimizer."""
    names = list(reference_model.label_names)
    low, high = reference_model.label_range_
    values = giant_labels[names]
    inside = values[((values >= low) & (values <= high)).all(axis=1)]
    truth = inside.sample(50, random_state=21).to_numpy()
    rng = np.random.default_rng(21)
    X = simulate_spectra(reference_model, truth, rng.uniform(50, 150, len(truth)), rng)
    fit = reference_model.infer_labels(X)
    sampler = CannonPosterior(reference_model, likelihood="quadratic")
    covered, offsets = [], []
    for n in range(len(truth)):
        post = sampler.sample(X[n, 0], X[n, 1], draws=250, tune=250, chains=2, cores=1,
                              seed=n, initial=fit.labels[n])
        covered.append((post.summary.p16.to_numpy() <= truth[n])
                       & (truth[n] <= post.summary.p84.to_numpy()))
        offsets.append((post.summary["mean"].to_numpy() - fit.labels[n])
                       / post.summary.sd.to_numpy())
    coverage = np.mean(covered)
    assert 0.55 < coverage < 0.80, coverage
    assert np.median(np.abs(offsets)) < 0.2


@pytest.mark.slow
def test_posterior_command_on_the_mystery_spectrum(tmp_path, capsys):
    from tests.conftest import CONTINUUM_FILE, shared_file

    mystery = shared_file("apogee", "mystery", "mystery_spec_wiped.fits")
    from skcannon.apogee.reference import load_reference_model
    from skcannon.cli import main
    from tests.conftest import REFERENCE_DIR

    model_path = tmp_path / "ref.h5"
    load_reference_model(REFERENCE_DIR).save(model_path)
    out = tmp_path / "post"
    assert main(["posterior", str(mystery), "--model", str(model_path), "--continuum",
                 str(CONTINUUM_FILE), "--draws", "200", "--tune", "200", "--chains", "2",
                 "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "priors: TEFF ~ Uniform" in text and "r_hat" in text
    summary = pd.read_csv(out / "posterior_summary.csv", index_col=0)
    assert set(summary.index) == {"TEFF", "LOGG", "FE_H", "ALPHA_M"}
    assert (out / "chains.nc").stat().st_size > 1000
    assert (out / "posterior_corner.png").stat().st_size > 10_000
    comparison = pd.read_csv(out / "uncertainty_comparison.csv")
    assert comparison.posterior_over_optimizer.between(0.5, 2).all()


def test_batch_posteriors_from_the_command_line(tmp_path, capsys, real_model_file):
    """posterior --rows: one compiled model for several stars, one table, convergence said."""
    from skcannon.cli import main

    real, model = real_model_file
    capsys.readouterr()
    assert main(["posterior", str(real), "--model", str(model), "--rows", "0,3,7",
                 "--draws", "300", "--tune", "300", "--chains", "2", "-o",
                 str(tmp_path / "post")]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "sampler: nutpie" in out and "3 posteriors in" in out and "stars/minute" in out
    assert "posteriors: 100%" in captured.err and "3/3 [" in captured.err   # a bar over stars
    import pandas as pd

    table = pd.read_csv(tmp_path / "post" / "posterior_summaries.csv")
    assert list(table.ROW) == [0, 3, 7] and list(table.ID) == ["star_0", "star_3", "star_7"]
    assert {"TEFF_MEAN", "TEFF_SD", "TEFF_P16", "TEFF_RHAT", "CONVERGED"} <= set(table.columns)
    assert (table.TEFF_P16 < table.TEFF_P50).all() and (table.TEFF_P50 < table.TEFF_P84).all()
    assert main(["posterior", str(real), "--model", str(model), "--rows", "5,400",
                 "-o", str(tmp_path / "bad")]) == 2
    assert "--rows: [400] not rows of" in capsys.readouterr().err


def test_pymc_and_nutpie_samplers_agree(reference_model):
    rng = np.random.default_rng(4)
    truth = np.array([[4650.0, 2.4, -0.3, 0.1]])
    X = simulate_spectra(reference_model, truth, np.array([120.0]), rng)
    means = {}
    for sampler in ("nutpie", "pymc", "emcee"):
        post = CannonPosterior(reference_model, likelihood="quadratic", sampler=sampler).sample(
            X[0, 0], X[0, 1], draws=400, tune=400, chains=2, seed=1)
        means[sampler] = post.summary[["mean", "sd"]].to_numpy()
    difference = np.abs(means["nutpie"][:, 0] - means["pymc"][:, 0]) / means["pymc"][:, 1]
    assert np.all(difference < 0.3)                      # same posterior, Monte Carlo noise
    np.testing.assert_allclose(means["nutpie"][:, 1], means["pymc"][:, 1], rtol=0.2)
    # emcee (the numpy log-posterior, no gradient, fewer effective draws): the same posterior
    difference = np.abs(means["emcee"][:, 0] - means["nutpie"][:, 0]) / means["nutpie"][:, 1]
    assert np.all(difference < 0.5)
    np.testing.assert_allclose(means["emcee"][:, 1], means["nutpie"][:, 1], rtol=0.3)
    with pytest.raises(ValueError, match="sampler must be one of 'nutpie', 'pymc', 'emcee'"):
        CannonPosterior(reference_model, sampler="nonesuch")


@pytest.mark.parametrize("prior", ["uniform", "normal"])
@pytest.mark.parametrize("likelihood", ["pixels", "quadratic"])
def test_numpy_log_posterior_agrees_with_the_pymc_model(reference_model, prior, likelihood):
    """LogPosterior.log_prob (numpy, what emcee samples) and the PyMC model's logp (what the
    NUTS back ends sample) are the same function of the labels, up to a constant."""
    from skcannon.inference.posterior import LogPosterior

    truth = np.array([[4700.0, 2.5, -0.2, 0.1]])
    X = simulate_spectra(reference_model, truth, 100, np.random.default_rng(0))
    points = truth + np.array([[0, 0, 0, 0], [30, 0.1, 0.02, 0.01], [-50, -0.2, 0.05, -0.02]])
    sampler = CannonPosterior(reference_model, prior=prior, likelihood=likelihood,
                              sampler="pymc")
    pymc_logp = _logp(sampler, X[0, 0], X[0, 1], points, jacobian=False)
    numpy_logp = LogPosterior(reference_model.state_, X[0, 0], X[0, 1], prior=prior,
                              likelihood=likelihood).log_prob(points)
    differences = numpy_logp - pymc_logp
    np.testing.assert_allclose(differences - differences[0], 0, atol=1e-6)
    assert np.ptp(pymc_logp) > 1.0                         # the points differ
