"""The posterior with the fits beyond the labels (issue #24): a radial velocity sampled with
the labels, a per-chip continuum marginalized, labels held fixed. Spectra from the independent
BinSpec emulator on one chip's first 1200 pixels (a short log-linear grid keeps the sampling
fast); shifted spectra by scipy's cubic spline, as in test_physics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pymc")

from skcannon import Cannon  # noqa: E402
from skcannon.inference.mcmc import CannonPosterior  # noqa: E402
from tests.inference.test_mcmc import _logp  # noqa: E402
from tests.inference.test_physics import NAMES, _flux, _shifted, _spectra, _wavelength  # noqa: E402

#: The pixels used: the first chip's first 1200 (one log-linear segment).
PIXELS = slice(0, 1200)
TRUE_RV = 23.4


@pytest.fixture(scope="module")
def short_model(emulator):
    labels = emulator.sample_labels(120, seed=0)[:, :4]
    X = _spectra(_flux(emulator, labels)[:, PIXELS], np.full(120, 200.0),
                 np.random.default_rng(0))
    return Cannon(NAMES, n_error_factors=0).fit(pd.DataFrame(labels, columns=NAMES), X,
                                                wavelength=_wavelength()[PIXELS])


@pytest.fixture(scope="module")
def shifted_star(emulator):
    truth = emulator.sample_labels(1, seed=5, margin=0.2)[:, :4]
    flux = _shifted(_flux(emulator, truth)[:, PIXELS], _wavelength()[PIXELS],
                    np.array([TRUE_RV]))
    return truth[0], _spectra(flux, np.array([100.0]), np.random.default_rng(2))


def _points(problem):
    """Three parameter vectors around the joint best fit (free labels, then RV)."""
    step = np.r_[[30.0, 0.03, 0.02][:len(problem.best) - 1], 0.05]
    return problem.best + np.array([0.0, 1.0, -1.5])[:, None] * step


def _pymc_logp(posterior, problem, points):
    """The PyMC model's log-density (no Jacobian) at parameter vectors (free labels, RV)."""
    low, high = float(problem.data["rv_low"]), float(problem.data["rv_high"])
    units = (points[:, -1] - low) / (high - low)

    class Named:                                   # _logp reads .names and .set_spectrum
        names = [*problem.names[:-1], "RV_unit"]
        pymc_model = posterior.pymc_model

        @staticmethod
        def set_spectrum(flux, ivar):
            posterior.backend.set_data(problem.data)

    return _logp(Named, None, None, np.c_[points[:, :-1], units], jacobian=False)


@pytest.mark.parametrize("factors", [False, True])
def test_numpy_and_pymc_posteriors_agree(short_model, shifted_star, factors):
    """The PyMC graph (what nutpie and PyMC sample: the shift in PyTensor, the continuum
    marginalized) and the numpy posterior (the pixel-space fit's own functions) are the same
    function of the labels and RV, up to a constant; with error factors too (Woodbury)."""
    state = short_model.state_
    if factors:
        rng = np.random.default_rng(7)
        state = dataclasses.replace(state, error_factors=0.003 * rng.standard_normal(
            (state.theta.shape[0], 2)))
    posterior = CannonPosterior(state, sampler="pymc", fit_rv=True, continuum_order=1,
                                fixed={"LOGG": 4.5})
    problem = posterior.problem(shifted_star[1][0, 0], shifted_star[1][0, 1])
    points = _points(problem)
    numpy_logp = problem.log_prob(points)
    pymc_logp = _pymc_logp(posterior, problem, points)
    differences = numpy_logp - pymc_logp
    np.testing.assert_allclose(differences - differences[0], 0, atol=1e-6)
    assert np.ptp(numpy_logp) > 1.0 and numpy_logp[0] > numpy_logp[1:].max()


@pytest.mark.slow
def test_the_posterior_samples_the_rv_and_holds_fixed_labels(short_model, shifted_star):
    """nutpie on the PyMC model: the RV's posterior mean within 3 sd of the truth and of the
    joint optimizer's RV within its errors; the fixed label comes back exactly."""
    truth, X = shifted_star
    posterior = CannonPosterior(short_model, sampler="nutpie", fit_rv=True,
                                rv_bounds=(-100, 100), fixed={"LOGG": truth[1]})
    assert posterior.likelihood == "pixels" and posterior.names == [*NAMES, "RV"]
    assert posterior.sampled == ["TEFF", "FE_H", "ALPHA_FE", "RV"]
    result = posterior.sample(X[0, 0], X[0, 1], draws=150, tune=150, chains=2, seed=1)
    rv = result.summary.loc["RV"]
    assert abs(rv["mean"] - TRUE_RV) < 3 * rv["sd"], (rv["mean"], rv["sd"])
    fit = short_model.infer_labels(X, fit_rv=True, rv_bounds=(-100, 100),
                                   fixed={"LOGG": truth[1]})
    assert abs(rv["mean"] - fit.rv[0]) < 2 * fit.rv_err[0]
    assert 0.5 < rv["sd"] / fit.rv_err[0] < 2.0
    assert np.all(result.samples(["LOGG"]) == truth[1])
    assert result.summary.loc["LOGG", "mean"] == truth[1]
    assert result.summary.loc["LOGG", "sd"] == 0
    assert "LOGG = " in result.priors and "RV ~ Uniform(-100, 100)" in result.priors


def test_emcee_samples_the_numpy_posterior_with_a_continuum(short_model, shifted_star):
    """emcee on the numpy posterior: RV near the truth, a continuum marginalized; a model
    without these options keeps the classic posterior (quadratic form, no nuisance)."""
    truth, X = shifted_star
    posterior = CannonPosterior(short_model, sampler="emcee", fit_rv=True,
                                rv_bounds=(-100, 100), continuum_order=1)
    result = posterior.sample(X[0, 0], X[0, 1], draws=150, tune=100, chains=2, seed=1)
    rv = result.summary.loc["RV"]
    assert abs(rv["mean"] - TRUE_RV) < max(3 * rv["sd"], 0.2)
    assert abs(result.summary.loc["TEFF", "mean"] - truth[0]) < 150
    classic = CannonPosterior(short_model, sampler="emcee")
    assert classic.nuisance is None and classic.likelihood == "quadratic"
    assert classic.names == list(NAMES) == classic.sampled


@pytest.mark.parametrize("options, match", [
    ({"fixed": {"VMACRO": 1.0}}, "not one of the model's labels"),
    ({"fixed": {"LOGG": np.nan}}, "finite value"),
    ({"fixed": dict.fromkeys(NAMES, 1.0)}, "every label is fixed"),
    ({"fit_rv": True, "rv_bounds": (5, -5)}, "rv_bounds"),
    ({"continuum_order": -1}, "continuum_order"),
])
def test_bad_posterior_options_are_refused(short_model, options, match):
    with pytest.raises(ValueError, match=match):
        CannonPosterior(short_model, sampler="emcee", **options)


def test_posterior_command_samples_the_rv(short_model, shifted_star, tmp_path, capsys):
    from skcannon.cli import main
    from skcannon.data import SpectralDataset

    truth, X = shifted_star
    ids = ["2M00000001+0000000", "2M00000002+0000000"]
    SpectralDataset.from_spectra(_wavelength()[PIXELS], np.repeat(X, 2, axis=0),
                                 pd.DataFrame({"APOGEE_ID": ids})).save(tmp_path / "s.h5")
    short_model.save(tmp_path / "model.h5")
    out = tmp_path / "post"
    assert main(["posterior", str(tmp_path / "s.h5"), "--model", str(tmp_path / "model.h5"),
                 "--rows", "0,1", "--sampler", "emcee", "--fit-rv", "--rv-max", "100",
                 "--fix", f"LOGG={truth[1]}", "--draws", "100", "--tune", "60",
                 "--chains", "1", "-o", str(out)]) == 0
    table = pd.read_csv(out / "posterior_summaries.csv")
    assert np.all(np.abs(table.RV - TRUE_RV) < np.maximum(3 * table.RV_ERR, 0.2))
    assert np.all(table.LOGG_MEAN == truth[1]) and np.all(table.LOGG_SD == 0)
    one = tmp_path / "one"                       # one spectrum: summary, chains, corner plot
    assert main(["posterior", str(tmp_path / "s.h5"), "--model", str(tmp_path / "model.h5"),
                 "--row", "1", "--sampler", "emcee", "--fit-rv", "--rv-max", "100",
                 "--continuum-order", "1", "--fix", f"LOGG={truth[1]}", "--draws", "100",
                 "--tune", "60", "--chains", "1", "-o", str(one)]) == 0
    summary = pd.read_csv(one / "posterior_summary.csv", index_col=0)
    assert list(summary.index) == [*NAMES, "RV"] and summary.loc["LOGG", "sd"] == 0
    assert abs(summary.loc["RV", "mean"] - TRUE_RV) < max(3 * summary.loc["RV", "sd"], 0.2)
    assert (one / "posterior_corner.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "continuum of order 1" in capsys.readouterr().out
    assert main(["posterior", str(tmp_path / "s.h5"), "--model", str(tmp_path / "model.h5"),
                 "--fix", "VMACRO=3", "-o", str(tmp_path / "bad")]) == 2
    assert "error: --fix: VMACRO=3" in capsys.readouterr().err
