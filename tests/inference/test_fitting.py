"""Label fitting: recovery with honest uncertainties, agreement with the TRF path, robustness."""

from __future__ import annotations

import numpy as np
import pytest

from skcannon.data.simulate import simulate_spectra
from skcannon.evaluation.metrics import pulls
from skcannon.inference import fit_labels_trf
from skcannon.spectra import IVAR


@pytest.fixture(scope="module")
def known(reference_model, giant_labels, noise_templates):
    """1500 spectra from a known model (the reference) with known noise, labels inside the
    model's training range."""
    low, high = reference_model.label_range_
    names = list(reference_model.label_names)
    values = giant_labels[names]
    inside = giant_labels[((values >= low) & (values <= high)).all(axis=1)]
    labels = inside.sample(1500, random_state=11).reset_index(drop=True)
    rng = np.random.default_rng(5)
    X = simulate_spectra(reference_model, labels, rng.uniform(60, 200, len(labels)), rng,
                         noise_templates)
    return labels[names].to_numpy(), X


def test_labels_recovered_with_honest_uncertainties(reference_model, known):
    truth, X = known
    fit = reference_model.infer_labels(X)
    assert fit.converged.mean() > 0.99
    pull = pulls(truth, fit.labels, fit.uncertainties)
    for i, name in enumerate(reference_model.label_names):
        sigma = np.median(fit.uncertainties[:, i])
        bias = np.mean(fit.labels[:, i] - truth[:, i])
        assert abs(bias) < 0.1 * sigma, (name, bias, sigma)
        assert abs(np.std(pull[:, i]) - 1) < 0.1, (name, np.std(pull[:, i]))


def test_uncertainties_are_in_physical_units(reference_model, known):
    _, X = known
    fit = reference_model.infer_labels(X[:20])
    teff_err, logg_err = np.median(fit.uncertainties[:, :2], axis=0)
    assert 1 < teff_err < 100 and 0.003 < logg_err < 0.3   # K and dex, not scaled units
    cov = fit.covariance
    np.testing.assert_allclose(cov, np.transpose(cov, (0, 2, 1)))
    assert np.all(np.linalg.eigvalsh(cov) > 0)


def test_batched_and_trf_paths_agree(reference_model, known):
    truth, X = known
    fast = reference_model.infer_labels(X[:15])
    slow, slow_chi2 = fit_labels_trf(reference_model.state_, X[:15, 0], X[:15, 1])
    np.testing.assert_allclose(fast.chi2, slow_chi2, rtol=1e-6)
    for i in range(slow.shape[1]):  # agree to a thousandth of the uncertainty
        np.testing.assert_allclose(fast.labels[:, i], slow[:, i], rtol=0,
                                   atol=1e-3 * fast.uncertainties[:, i].max())
    via_method = reference_model.infer_labels(X[:3], method="trf")
    np.testing.assert_allclose(via_method.labels, slow[:3])


def test_heavily_masked_and_empty_spectra_do_not_crash(reference_model, known):
    _, X = known
    X = X[:3].copy()
    rng = np.random.default_rng(1)
    X[0, IVAR][rng.random(X.shape[2]) < 0.95] = 0.0     # 95 % masked: still fits
    X[1, IVAR] = 0.0                                     # everything masked: flagged
    fit = reference_model.infer_labels(X)
    assert np.isfinite(fit.labels[0]).all() and fit.converged[0]
    assert fit.n_good[0] < 0.06 * X.shape[2]
    assert not fit.converged[1] and np.isnan(fit.labels[1]).all()
    assert fit.converged[2]


def test_multi_start_reports_winner_and_disagreement(reference_model, known):
    _, X = known
    fit = reference_model.infer_labels(X[:50], n_starts=4)
    assert set(np.unique(fit.best_start)) <= set(range(5))
    assert fit.starts_disagree.mean() < 0.1              # clean spectra: one minimum
    table = fit.to_frame()
    for column in ("TEFF", "TEFF_ERR", "COV_TEFF_LOGG", "REDUCED_CHI2", "BEST_START",
                   "STARTS_DISAGREE", "ON_BOUND", "OUTSIDE_TRAINING", "N_PIXELS"):
        assert column in table


def test_bound_and_range_flags(reference_model, giant_labels):
    """Stars at the hot edge of the training range: with no margin some fits end on the bound
    and are flagged; with a margin, fits beyond the range are flagged as outside it."""
    names = list(reference_model.label_names)
    labels = giant_labels[names].sample(60, random_state=3).to_numpy()
    labels[:, 0] = reference_model.label_range_[1, 0]          # Teff at the training maximum
    spectra = simulate_spectra(reference_model, labels, 80, np.random.default_rng(0))
    tight = reference_model.infer_labels(spectra, margin=0.0)
    at_max = np.isclose(tight.labels[:, 0], reference_model.label_range_[1, 0], rtol=1e-9)
    assert at_max.any() and np.all(tight.on_bound[at_max])
    assert not tight.outside_training.any()
    loose = reference_model.infer_labels(spectra, margin=0.1)
    beyond = np.any((loose.labels < reference_model.label_range_[0]) |
                    (loose.labels > reference_model.label_range_[1]), axis=1)
    assert beyond.any()
    np.testing.assert_array_equal(loose.outside_training, beyond)


def test_wrong_pixel_count_is_clear(reference_model):
    with pytest.raises(ValueError, match="8575 pixels per spectrum; this step expects 7214"):
        reference_model.infer_labels(np.ones((1, 3, 8575)))


def test_excess_scatter_recovers_a_known_extra_scatter():
    from skcannon.stats import excess_scatter

    rng = np.random.default_rng(3)
    n, p = 200, 4000
    variance = rng.uniform(0.5e-4, 4e-4, (n, p))
    extra = np.r_[np.zeros(100), np.full(100, 0.03)]
    residual = rng.normal(0, np.sqrt(variance + extra[:, None] ** 2))
    estimate = excess_scatter(residual ** 2, 1 / variance, np.full(n, p))
    np.testing.assert_allclose(estimate[100:], 0.03, rtol=0.05)      # ~1 % sd each
    assert np.all(estimate[:100] < 0.004)          # noise only: about 0, never negative
    assert np.all(estimate >= 0)


def test_spectra_like_the_training_set_are_not_called_unlike(reference_model, simulated_set):
    """Held-out spectra drawn from the model: none is flagged unlike the training set, and
    their fits are confident unless on a bound or outside the range."""
    _, X, _ = simulated_set
    fit = reference_model.infer_labels(X[:300])
    assert not fit.unlike_training.any()
    assert np.nanmax(fit.excess_scatter) < fit.unlike_limit / 2
    expected = fit.converged & ~fit.on_bound & ~fit.outside_training
    np.testing.assert_array_equal(fit.confident, expected)
    table = fit.to_frame()
    assert {"EXCESS_SCATTER", "UNLIKE_TRAINING", "CONFIDENT"} <= set(table.columns)
