"""Training inputs checked by what they mean: each degenerate training set of the round-3
audit is a named error (or, for duplicates, an explicit option), never a model that answers
with confident nonsense."""

from __future__ import annotations

import numpy as np
import pytest

from skcannon.errors import LabelError, TrainingSetError
from skcannon.model import Cannon
from skcannon.model.checks import duplicate_spectra
from tests.model.test_changed_after_fit import small_set

NAMES = ("TEFF", "LOGG", "FE_H")


@pytest.fixture(scope="module")
def data():
    return small_set()


def _fit(labels, X, names=NAMES, **params):
    return Cannon(names, n_error_factors=0, **params).fit(labels, X)


def test_repeated_spectra_are_one_star_refused_or_dropped_when_asked(data):
    labels, X = data
    rows = np.repeat(np.arange(20), 3)                   # 20 stars, each 3 times
    with pytest.raises(TrainingSetError, match=r"40 of 60 training spectra repeat an earlier "
                                               r"one \(row 1 repeats row 0; .*so 20 distinct "
                                               r"stars would count as 60.*duplicates='drop'"):
        _fit(labels.iloc[rows], X[rows])
    rows = np.r_[np.arange(60), [4, 9]]
    model = _fit(labels.iloc[rows], X[rows], duplicates="drop")
    assert model.n_training_stars_ == 60
    assert list(model.dropped_["row"]) == [60, 61]
    assert list(model.dropped_["reason"]) == ["same spectrum as row 4 (row 4)",
                                              "same spectrum as row 9 (row 9)"]
    np.testing.assert_array_equal(model.theta_, _fit(labels, X).theta_)


def test_duplicates_are_found_by_content_on_the_usable_pixels(data):
    _, X = data
    copy = np.concatenate([X[:3], X[:1]])
    copy[3, 2, :] = 5.0                                  # another bitmask: the same spectrum
    assert list(duplicate_spectra(copy)) == [-1, -1, -1, 0]
    copy[3, 0, 4] += 1e-12                               # one pixel differs: another star
    assert list(duplicate_spectra(copy)) == [-1, -1, -1, -1]


def test_identical_spectra_for_every_star_are_refused(data):
    labels, X = data
    same = np.broadcast_to(X[:1], X.shape).copy()
    with pytest.raises(TrainingSetError, match="all 60 training spectra are identical"):
        _fit(labels, same, duplicates="drop")
    with pytest.raises(TrainingSetError, match="all 60 training spectra are identical"):
        _fit(labels, same)


def test_integer_or_truncated_flux_is_refused(data):
    labels, X = data
    truncated = X.copy()
    truncated[:, 0] = np.floor(truncated[:, 0] + 0.5)
    with pytest.raises(TrainingSetError, match="every usable flux value is a whole number"):
        _fit(labels, truncated)


def test_non_finite_flux_or_bad_inverse_variance_is_named(data):
    labels, X = data
    broken = X.copy()
    broken[3, 0, 5] = np.nan
    with pytest.raises(TrainingSetError, match=r"1 pixel\(s\) have non-finite flux and inverse "
                                               r"variance > 0 \(first: row 3, pixel 5\)"):
        _fit(labels, broken)
    broken[3, 1, 5] = 0.0                                # masked: usable
    _fit(labels, broken)
    broken[7, 1, 2] = -1.0
    with pytest.raises(TrainingSetError, match=r"negative or non-finite \(first: row 7, pixel"):
        _fit(labels, broken)


def test_a_label_carried_by_one_star_is_refused(data):
    labels, X = data
    one = labels.copy()
    one["FE_H"] = 1e-9 * np.arange(60)                   # all but one star at ~0
    one.loc[7, "FE_H"] = -1.0
    with pytest.raises(LabelError, match=r"spread of FE_H is carried by 1 star\(s\) \(row 7 "
                                         r"= -1\)"):
        _fit(one, X)
    wild = labels.rename(columns={"FE_H": "C_FE"})
    wild.loc[5, "C_FE"] = 1e50                           # an unknown label: no plausible range
    with pytest.raises(LabelError, match=r"spread of C_FE is carried by 1 star\(s\) \(row 5 = "
                                         r"1e\+50\)"):
        _fit(wild, X, names=("TEFF", "LOGG", "C_FE"))


def test_too_few_distinct_values_for_the_terms(data):
    labels, X = data
    binary = labels.assign(FE_H=np.where(np.arange(60) % 2, 0.0, -0.5))
    with pytest.raises(LabelError, match=r"FE_H takes only 2 distinct values \(-0.5, 0\); its "
                                         r"terms up to power 2 need at least 3"):
        _fit(binary, X)
    assert _fit(binary, X, order=1).pixel_mask_.any()   # linear: two values suffice


def test_a_label_of_1e300_is_implausible_not_a_linalg_error(data):
    labels, X = data
    wild = labels.rename(columns={"FE_H": "C_FE"})
    wild.loc[5, "C_FE"] = 1e300
    with pytest.raises(LabelError, match=r"row 5: C_FE = 1e\+300 outside the plausible"):
        _fit(wild, X, names=("TEFF", "LOGG", "C_FE"))


def test_a_label_censored_everywhere_is_refused(data):
    labels, X = data
    with pytest.raises(ValueError, match="censors: the mask of LOGG is False on every pixel"):
        _fit(labels, X, censors={"LOGG": np.zeros(X.shape[2], bool)})
    masked = X.copy()
    masked[:, 1, :10] = 0.0                              # LOGG allowed only where nothing trains
    with pytest.raises(TrainingSetError, match="LOGG may act only on pixels that could not"):
        _fit(labels, masked, censors={"LOGG": np.arange(X.shape[2]) < 10})


def test_repeated_label_columns_are_named(data):
    labels, X = data
    twice = labels.assign(X=1.0).rename(columns={"X": "TEFF"})
    with pytest.raises(LabelError, match="more than one column named TEFF"):
        _fit(twice, X)
