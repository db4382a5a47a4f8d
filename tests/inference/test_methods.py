"""Label fitting on the model's learned state (a value), and the registry of fitting methods."""

from __future__ import annotations

import numpy as np
import pytest

from skcannon.data.simulate import simulate_spectra
from skcannon.inference.fitting import fit_labels
from skcannon.inference.methods import FIT_METHODS, fit_method, register_fit_method
from skcannon.inference.optimize import linearized_guess
from skcannon.inference.quadratic import sufficient_statistics
from skcannon.spectra import FLUX, IVAR


@pytest.fixture(scope="module")
def spectra(reference_model):
    rng = np.random.default_rng(8)
    truth = np.column_stack([rng.uniform(4400, 4900, 12), rng.uniform(1.8, 3.0, 12),
                             rng.uniform(-0.4, 0.1, 12), rng.uniform(0.0, 0.2, 12)])
    return simulate_spectra(reference_model, truth, 100, rng)


@pytest.fixture
def toy_method():
    """A registered toy method: the linearized guess alone (no iteration); unregistered after
    the test, so nothing leaks into other tests."""
    def guess_only(state, flux, ivar, *, n_starts, margin, seed):
        return fit_labels(state, flux, ivar, n_starts=0, margin=margin, seed=seed, max_iter=0)

    register_fit_method("guess", guess_only)
    yield guess_only
    del FIT_METHODS["guess"]


def test_fitting_takes_the_learned_state_not_the_estimator(reference_model, spectra):
    """fit_labels works on the state value alone and gives what infer_labels gives; inferring
    labels leaves the estimator's attributes as they were (nothing cached)."""
    before = dict(vars(reference_model))
    via_model = reference_model.infer_labels(spectra, n_starts=2, seed=3)
    assert vars(reference_model).keys() == before.keys()
    assert all(vars(reference_model)[k] is v for k, v in before.items())
    state = reference_model.state_
    direct = fit_labels(state, spectra[:, FLUX], spectra[:, IVAR], n_starts=2, seed=3)
    np.testing.assert_array_equal(direct.labels, via_model.labels)
    np.testing.assert_array_equal(direct.covariance, via_model.covariance)
    assert direct.label_names == state.label_names == tuple(reference_model.label_names)


def test_state_carries_the_vectorizer_and_the_bounds(reference_model):
    state = reference_model.state_
    np.testing.assert_array_equal(state.vectorizer.exponents,
                                  reference_model.vectorizer_.exponents)
    for ours, theirs in zip(state.label_bounds(0.2), reference_model.label_bounds(0.2),
                            strict=True):
        np.testing.assert_array_equal(ours, theirs)
    low, high = state.label_range
    lower, upper = state.label_bounds(0.1)
    np.testing.assert_allclose(lower, low - 0.1 * (high - low))
    np.testing.assert_allclose(upper, high + 0.1 * (high - low))


def test_registered_methods_and_unknown_ones(reference_model, spectra):
    assert {"lm", "trf"} <= set(FIT_METHODS)
    assert fit_method("lm") is fit_labels
    with pytest.raises(ValueError, match="method must be one of 'lm', 'trf'.*got 'nelder'"):
        reference_model.infer_labels(spectra[:2], method="nelder")
    with pytest.raises(ValueError, match="already registered"):
        register_fit_method("lm", fit_labels)
    assert FIT_METHODS["lm"] is fit_labels


def test_a_registered_method_is_used_by_infer_labels(reference_model, spectra, toy_method):
    fit = reference_model.infer_labels(spectra, method="guess", margin=0.1)
    state = reference_model.state_
    stats = sufficient_statistics(state.theta, state.s2, state.pixel_mask, spectra[:, FLUX],
                                  spectra[:, IVAR], factors=state.error_factors)
    lower, upper = (state.scaling.scale(b)[0] for b in state.label_bounds(0.1))
    guess = state.scaling.unscale(linearized_guess(stats, state.vectorizer, lower, upper))
    np.testing.assert_array_equal(fit.labels, guess)
    best = reference_model.infer_labels(spectra)
    assert np.all(fit.chi2 >= best.chi2 - 1e-6 * best.chi2)       # the guess is not the best


def test_fit_method_choices_on_the_command_line_come_from_the_registry(toy_method):
    from skcannon.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["fit", "data.h5", "--model", "m.h5", "--method", "guess"])
    assert args.method == "guess"
    with pytest.raises(SystemExit):
        parser.parse_args(["fit", "data.h5", "--model", "m.h5", "--method", "nelder"])
