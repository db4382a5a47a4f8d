"""The Cannon estimator: scikit-learn contract, prediction, gradients, files, reference import."""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold

from skcannon.apogee.reference import REFERENCE_LABELS
from skcannon.errors import BadFileError
from skcannon.model import Cannon
from tests.conftest import REFERENCE_DIR

LABELS = list(REFERENCE_LABELS)


@pytest.fixture(scope="module")
def trained(simulated_set):
    labels, X, _ = simulated_set
    return Cannon(label_names=LABELS).fit(labels.iloc[:400], X[:400])


def test_params_clone_and_fit_returns_self(simulated_set):
    labels, X, _ = simulated_set
    model = Cannon(label_names=LABELS, regularization=0.0, scatter_grid=None)
    assert model.get_params()["label_names"] == LABELS
    twin = clone(model).set_params(order=1)
    assert twin.order == 1 and model.order == 2
    assert not hasattr(model, "theta_")
    assert model.fit(labels.iloc[:100], X[:100]) is model
    assert not hasattr(clone(model), "theta_")


def test_learns_the_reference_model(trained, reference_model, simulated_set):
    labels, _, _ = simulated_set
    test = labels.iloc[400:]
    good = trained.pixel_mask_ & reference_model.pixel_mask_
    error = trained.predict(test)[:, good] - reference_model.predict(test)[:, good]
    depth = 1 - reference_model.predict(test)[:, good]
    assert np.sqrt(np.mean(error**2)) < 0.003           # vs typical line depths of 0.1-0.5
    assert np.sqrt(np.mean(depth**2)) > 0.05
    good &= reference_model.s2_ > 0
    ratio = np.sqrt(trained.s2_[good]) / np.sqrt(reference_model.s2_[good])
    assert 0.8 < np.median(ratio) < 1.2


def test_gradient_in_physical_units_matches_finite_differences(trained, simulated_set):
    labels, _, _ = simulated_set
    point = labels[LABELS].to_numpy()[:3]
    analytic = trained.gradient(point)
    steps = np.array([1.0, 0.01, 0.01, 0.01])          # K, dex, dex, dex
    for i, h in enumerate(steps):
        shift = np.zeros(len(LABELS))
        shift[i] = h
        numeric = (trained.predict(point + shift) - trained.predict(point - shift)) / (2 * h)
        np.testing.assert_allclose(analytic[:, i], numeric, rtol=1e-5, atol=1e-9)


def test_model_file_round_trip(trained, simulated_set, tmp_path):
    labels, X, _ = simulated_set
    path = trained.save(tmp_path / "model.h5")
    loaded = Cannon.load(path)
    np.testing.assert_array_equal(loaded.theta_, trained.theta_)
    np.testing.assert_array_equal(loaded.s2_, trained.s2_)
    np.testing.assert_array_equal(loaded.predict(labels.iloc[400:]),
                                  trained.predict(labels.iloc[400:]))
    assert loaded.label_names == tuple(LABELS) and loaded.training_hash_ == trained.training_hash_
    with pytest.raises(FileExistsError):
        trained.save(path)
    from skcannon.integrity import SEAL_MAGIC, SEAL_SIZE

    data = path.read_bytes()
    assert data.startswith(SEAL_MAGIC)                               # the seal, then
    assert data[SEAL_SIZE:SEAL_SIZE + 8] == b"\x89HDF\r\n\x1a\n"    # HDF5, not pickle


def test_tampered_truncated_and_wrong_version_files(trained, tmp_path):
    path = trained.save(tmp_path / "model.h5")
    tampered = tmp_path / "tampered.h5"
    tampered.write_bytes(path.read_bytes())
    with h5py.File(tampered, "r+") as h5:
        h5["s2"][5] = 123.0
    with pytest.raises(BadFileError, match="checksum mismatch"):
        Cannon.load(tampered)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(BadFileError, match="truncated.h5"):
        Cannon.load(truncated)
    old = tmp_path / "old.h5"
    old.write_bytes(path.read_bytes())
    with h5py.File(old, "r+") as h5:
        h5.attrs["format_version"] = 99
    from skcannon.integrity import seal_file

    seal_file(old)             # a sealed file of another version (a newer skcannon's)
    with pytest.raises(BadFileError, match="format version 99"):
        Cannon.load(old)


def test_bad_training_input_is_clear(simulated_set):
    labels, X, _ = simulated_set
    broken = labels.iloc[:100].copy()
    broken.loc[5, "LOGG"] = np.nan
    with pytest.raises(ValueError, match=re.escape(f"{broken.APOGEE_ID[5]}: LOGG missing")):
        Cannon(label_names=LABELS).fit(broken, X[:100])
    with pytest.raises(ValueError, match="lack column.*MG_FE"):
        Cannon().fit(labels.iloc[:100], X[:100])
    with pytest.raises(ValueError, match="100 label rows but 99 spectra"):
        Cannon(label_names=LABELS).fit(labels.iloc[:100], X[:99])
    with pytest.raises(ValueError, match=r"shape \(n_stars, 3, n_pixels\)"):
        Cannon(label_names=LABELS).fit(labels.iloc[:100], X[:100, 0])


def test_reference_import_equals_direct_polynomial():
    if not REFERENCE_DIR.is_dir():
        pytest.skip("reference model absent")
    from skcannon.apogee.reference import load_reference_model

    model = load_reference_model(REFERENCE_DIR)
    coefficients = np.loadtxt(REFERENCE_DIR / "trained_apokasc_gc_ind_feh_fix.txt")
    baseline = np.loadtxt(REFERENCE_DIR / "trained_apokasc_gc_ind_feh_fix_baseline_labels.txt")
    labels = np.array([[4800.0, 2.4, -0.2, 0.1], [4300.0, 1.5, 0.1, 0.0]])
    for row, star in zip(model.predict(labels), labels, strict=True):
        t, g, f, a = star - baseline
        terms = [1, t, g, f, a, t * t, t * g, t * f, t * a, g * g, g * f, g * a, f * f, f * a,
                 a * a]
        np.testing.assert_allclose(row, np.dot(terms, coefficients), rtol=1e-12)
    scatter = np.loadtxt(REFERENCE_DIR / "trained_apokasc_gc_ind_feh_fix_scatter.txt")
    np.testing.assert_allclose(model.s2_, scatter**2)


def test_grid_search_over_scatter_grid_and_regularization(simulated_set):
    labels, X, _ = simulated_set
    search = GridSearchCV(
        Cannon(label_names=LABELS),
        {"regularization": [0.0, 1e3], "scatter_grid": [None, np.array([0, 1e-6, 1e-4, 1e-2])]},
        cv=KFold(2, shuffle=True, random_state=0))
    search.fit(labels.iloc[:200], X[:200, :, :1500])
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores)) and len(set(scores.round(8))) == 4  # params matter
    assert search.best_score_ == scores.max()


@pytest.mark.parametrize("option", [{"n_starts": -1}, {"margin": -1.0}, {"margin": np.nan},
                                    {"margin": np.inf}, {"seed": -2}, {"n_starts": 1.5}])
def test_infer_labels_refuses_options_out_of_range(reference_model, option):
    X = np.ones((1, 3, reference_model.theta_.shape[0]))
    name = next(iter(option))
    with pytest.raises(ValueError, match=name):
        reference_model.infer_labels(X, **option)
