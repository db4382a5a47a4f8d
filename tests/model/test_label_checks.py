"""Labels are checked where they enter training: nulls, NaN, strings, implausible values,
constant and collinear labels, too few stars, nothing unmasked - each a named error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skcannon.errors import LabelError, TrainingSetError
from skcannon.labels import label_problems
from skcannon.model import Cannon, CannonRegressor

LABELS = ("TEFF", "LOGG", "FE_H")


@pytest.fixture(scope="module")
def small_set(simulated_set):
    labels, X, _ = simulated_set
    return labels.iloc[:120].reset_index(drop=True), X[:120]


def test_label_problems_names_each_kind():
    values = np.array([[4500, 2.5, 0.0], [-9999, 2.5, 0.0], [np.nan, 2.5, 0.0],
                       [2.6e-305, 2.5, 0.0], [4500, np.inf, 7.0]])
    problems = label_problems(values, LABELS)
    assert problems[0] == ""
    assert problems[1] == "TEFF null (-9999)"
    assert problems[2] == "TEFF missing (NaN)"
    assert "TEFF = 2.6e-305 outside the plausible 2000..50000" in problems[3]
    assert problems[4] == "LOGG infinite; FE_H = 7 outside the plausible -6..2"
    # unknown labels are only checked for nulls and non-finite values
    assert label_problems([[1e6], [-9999]], ["MY_LABEL"]) == ["", "MY_LABEL null (-9999)"]


def test_aspcap_nulls_are_refused_naming_the_stars(small_set):
    labels, X = small_set
    broken = labels.copy()
    broken.loc[[3, 40], "TEFF"] = -9999.0
    broken["FE_H"] = broken["FE_H"].astype(object)
    broken.loc[7, "FE_H"] = "n/a"                        # a string in a number column
    with pytest.raises(LabelError) as info:
        Cannon(LABELS).fit(broken, X)
    message = str(info.value)
    assert "3 of 120 training stars" in message
    for row, what in ((3, "TEFF null (-9999)"), (40, "TEFF null (-9999)"),
                      (7, "FE_H missing (NaN)")):
        assert f"{labels.APOGEE_ID[row]}: {what}" in message


def test_dropping_bad_labels_trains_on_the_rest_and_lists_them(small_set):
    labels, X = small_set
    broken = labels.copy()
    broken.loc[[3, 40], "TEFF"] = -9999.0
    model = Cannon(LABELS, bad_labels="drop", n_error_factors=0).fit(broken, X)
    assert model.n_training_stars_ == 118
    assert list(model.dropped_["row"]) == [3, 40]
    assert list(model.dropped_["id"]) == list(labels.APOGEE_ID[[3, 40]])
    assert set(model.dropped_["reason"]) == {"TEFF null (-9999)"}
    clean = Cannon(LABELS, n_error_factors=0).fit(labels.drop(index=[3, 40]), X[
        np.setdiff1d(np.arange(120), [3, 40])])
    np.testing.assert_allclose(model.theta_, clean.theta_)


def test_the_regressor_checks_too(small_set):
    labels, X = small_set
    y = labels[list(LABELS)].to_numpy(float)
    y[5, 1] = np.nan
    with pytest.raises(LabelError, match="row 5: LOGG missing"):
        CannonRegressor(Cannon(LABELS)).fit(X, y)


def test_constant_and_collinear_labels_are_named(small_set):
    labels, X = small_set
    constant = labels.assign(FE_H=-0.1)
    with pytest.raises(LabelError, match=r"constant label FE_H \(= -0.1 for all 120 stars\)"):
        Cannon(LABELS).fit(constant, X)
    collinear = labels.assign(FE_H=labels.LOGG * 0.5 - 1.0)
    with pytest.raises(LabelError, match="collinear labels LOGG and FE_H"):
        Cannon(LABELS).fit(collinear, X)


def test_too_few_stars_says_how_many_are_needed(small_set):
    labels, X = small_set
    # 3 labels, quadratic: 10 terms -> 20 stars at least
    with pytest.raises(TrainingSetError, match="19 stars .* needs at least 20"):
        Cannon(LABELS).fit(labels.iloc[:19], X[:19])
    model = Cannon(LABELS, n_error_factors=0).fit(labels.iloc[:20], X[:20])
    assert model.pixel_mask_.any()


def test_all_masked_spectra_are_refused(small_set):
    labels, X = small_set
    masked = X.copy()
    masked[:, 1] = 0.0
    with pytest.raises(TrainingSetError, match="no pixel is unmasked"):
        Cannon(LABELS).fit(labels, masked)


def test_labels_for_prediction_are_checked(small_set, reference_model):
    with pytest.raises(LabelError, match="not numbers"):
        reference_model.predict([["hot", 2.5, 0.0, 0.0]])
    with pytest.raises(LabelError, match="non-finite"):
        reference_model.predict(pd.DataFrame(
            {"TEFF": [np.nan], "LOGG": [2.5], "FE_H": [0.0], "ALPHA_M": [0.0]}))
