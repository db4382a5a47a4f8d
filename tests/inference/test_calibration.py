"""Calibrated uncertainties: a known systematic floor is recovered; on real spectra the held-out
pulls then have unit width (formal ones are 2-3x too wide); formal errors stay available."""

from __future__ import annotations

import numpy as np
import pytest

from skcannon.evaluation import held_out_pulls
from skcannon.inference.calibration import (
    UncertaintyCalibration,
    learn_calibration,
)
from skcannon.model import Cannon, CannonRegressor


def test_a_known_floor_is_recovered_and_formal_errors_are_never_shrunk():
    rng = np.random.default_rng(0)
    n = 4000
    formal = rng.uniform(1, 3, (n, 2))
    floor = np.array([2.0, 0.0])
    residual = rng.normal(0, np.sqrt(formal ** 2 + floor ** 2))
    learned = learn_calibration(residual, formal).floor
    assert learned[0] == pytest.approx(2.0, rel=0.05)
    assert learned[1] < 0.3                      # residuals already explained: ~no floor
    too_wide = learn_calibration(0.5 * residual[:, 1:], formal[:, 1:]).floor
    assert too_wide[0] == 0.0                    # never below the formal errors
    with pytest.raises(ValueError, match="at least 20"):
        learn_calibration(residual[:10], formal[:10])
    with pytest.raises(ValueError, match="non-negative"):
        UncertaintyCalibration(np.array([-1.0]))


def test_calibrated_pulls_on_real_spectra_have_unit_width(real_set):
    """10-fold calibration inside each training half, pulls on the other half (5 repeats: the
    real residuals have heavy tails, so one split's pull width scatters by ~0.1-0.3).
    Measured: 1.03, 1.01, 1.10 - [M/H] at the edge of the 10 % target."""
    names = ("TEFF", "LOGG", "PARAM_M_H")
    X, y = real_set.X, real_set.table[list(names)].to_numpy(float)
    table = held_out_pulls(CannonRegressor(Cannon(names, calibration_folds=10)), X, y, names,
                           n_repeats=5).set_index("label")
    assert (table.formal_pull_sd > 1.8).all()                  # formal errors: far too small
    np.testing.assert_allclose(table.pull_sd, 1.0, atol=0.11)  # calibrated


def test_calibration_is_kept_in_the_model_file_and_reported_beside_formal(real_set, tmp_path):
    names = ("TEFF", "LOGG", "PARAM_M_H")
    y = real_set.table[list(names)].to_numpy(float)
    model = Cannon(names, calibration_folds=4).fit(y, real_set.X)
    assert model.calibration_.shape == (3,) and np.all(model.calibration_ > 0)
    loaded = Cannon.load(model.save(tmp_path / "calibrated.h5"))
    np.testing.assert_array_equal(loaded.calibration_, model.calibration_)
    fit = loaded.infer_labels(real_set.X[:20])
    table = fit.to_frame()
    expected = np.sqrt(table.TEFF_ERR_FORMAL ** 2 + model.calibration_[0] ** 2)
    np.testing.assert_allclose(table.TEFF_ERR, expected)
    plain = Cannon(names).fit(y, real_set.X)
    assert plain.calibration_ is None
    plain_table = plain.infer_labels(real_set.X[:20]).to_frame()
    np.testing.assert_array_equal(plain_table.TEFF_ERR, plain_table.TEFF_ERR_FORMAL)
    with pytest.raises(ValueError, match="calibration_folds must be 0 or 2"):
        Cannon(names, calibration_folds=1).fit(y, real_set.X)


def test_calibrated_pulls_on_simulated_spectra_have_unit_width(reference_model, simulated_set):
    """Spectra drawn from the reference model, 2-fold: a model trained on 300 of them has errors
    of its own (finite training set) that the formal uncertainties miss; the calibration,
    extrapolated to the full training set, accounts for them on the other 300."""
    labels, X, _ = simulated_set
    names = list(reference_model.label_names)
    table = held_out_pulls(CannonRegressor(Cannon(names, calibration_folds=10)), X,
                           labels[names].to_numpy(float), names, n_repeats=1).set_index("label")
    assert (table.formal_pull_sd > 1.3).all()
    np.testing.assert_allclose(table.pull_sd, 1.0, atol=0.1)


def test_floor_extrapolation_to_the_full_training_set():
    from skcannon.inference.calibration import extrapolate_floor

    # floor^2 = 1 + 200 / n: measured at n = 100 (3) and 200 (2) -> at 400: 1.5
    floors = {100.0: np.sqrt([3.0]), 200.0: np.sqrt([2.0])}
    assert extrapolate_floor(floors, 400)[0] == pytest.approx(np.sqrt(1.5))
    # rising with n (noise): kept at the larger set's value; never below 0
    assert extrapolate_floor({100.0: [1.0], 200.0: [2.0]}, 400)[0] == pytest.approx(2.0)
    assert extrapolate_floor({100.0: [3.0], 200.0: [0.5]}, 10_000)[0] == 0.0
    assert extrapolate_floor({200.0: np.array([2.0])}, 400)[0] == 2.0
