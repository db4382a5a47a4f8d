"""Training on uncertain labels (errors-in-variables) and on missing labels
(skcannon.model.label_priors, Cannon.fit(label_err=...), Cannon(missing_labels=...))."""

from __future__ import annotations

import numpy as np
import pytest

from skcannon.errors import LabelError
from skcannon.inference.quadratic import chi2_of, sufficient_statistics
from skcannon.model import Cannon
from skcannon.model.label_priors import add_label_prior, check_label_err, fix_gauge

NAMES = ("TEFF", "LOGG")
ERR = np.array([150.0, 0.3])


def _quadratic_star_spectra(rng, theta, n):
    """Spectra a quadratic Cannon generates exactly (so a model trained on the true labels
    has slope 1): labels uniform in Teff 4000-5000 K, log g 1-3, S/N 200."""
    labels = np.column_stack([rng.uniform(4000, 5000, n), rng.uniform(1, 3, n)])
    s = (labels - [4500, 2]) / [300, 0.6]
    v = np.column_stack([np.ones(n), s, s[:, 0] ** 2, s[:, 0] * s[:, 1], s[:, 1] ** 2])
    flux = v @ theta.T + rng.normal(size=(n, len(theta))) / 200
    return labels, np.stack([flux, np.full_like(flux, 200.0 ** 2), np.zeros_like(flux)], axis=1)


@pytest.fixture(scope="module")
def planted():
    """(train labels, train spectra, catalog labels with errors ERR, test labels, spectra)."""
    rng = np.random.default_rng(0)
    theta = np.column_stack([np.ones(200), rng.normal(0, 0.02, (200, 2)),
                             rng.normal(0, 0.004, (200, 3))])
    train, X = _quadratic_star_spectra(rng, theta, 300)
    test, X_test = _quadratic_star_spectra(rng, theta, 200)
    catalog = train + rng.normal(size=train.shape) * ERR
    return train, X, catalog, test, X_test


def _slopes(model, test, X_test):
    fit = model.infer_labels(X_test)
    return np.array([np.polyfit(test[:, i], fit.labels[:, i], 1)[0] for i in range(2)]), \
        np.std(fit.labels - test, axis=0)


def test_label_errors_remove_the_planted_attenuation(planted):
    train, X, catalog, test, X_test = planted
    plain = Cannon(NAMES, n_error_factors=0).fit(catalog, X)
    eiv = Cannon(NAMES, n_error_factors=0).fit(catalog, X, label_err=ERR)
    plain_slope, plain_scatter = _slopes(plain, test, X_test)
    eiv_slope, eiv_scatter = _slopes(eiv, test, X_test)
    assert np.all(plain_slope > 1.2)                 # noisy labels stretch the inferred ones
    assert abs(eiv_slope[0] - 1) < 0.01 and abs(eiv_slope[1] - 1) < 0.1
    assert np.all(eiv_scatter < 0.5 * plain_scatter)
    # the posterior training labels are closer to the truth than the catalog
    assert np.all(np.std(eiv.training_labels_ - train, axis=0)
                  < 0.5 * np.std(catalog - train, axis=0))
    assert eiv.training_label_err_.shape == train.shape and eiv.label_iterations_ >= 1


def test_without_label_err_or_ignored_the_fit_is_the_classic_one(planted):
    _, X, catalog, _, _ = planted
    plain = Cannon(NAMES, n_error_factors=0).fit(catalog, X)
    ignored = Cannon(NAMES, n_error_factors=0, label_errors="ignore").fit(catalog, X,
                                                                         label_err=ERR)
    np.testing.assert_array_equal(plain.theta_, ignored.theta_)
    np.testing.assert_array_equal(plain.s2_, ignored.s2_)
    assert plain.label_iterations_ == 0 and plain.training_label_err_ is None
    np.testing.assert_array_equal(plain.training_labels_, catalog)


def test_exact_label_errors_keep_the_catalog_labels(planted):
    _, X, catalog, _, _ = planted
    model = Cannon(NAMES, n_error_factors=0, label_iterations=2).fit(
        catalog, X, label_err=np.zeros(2))
    np.testing.assert_array_equal(model.training_labels_, catalog)
    np.testing.assert_allclose(model.theta_, Cannon(NAMES, n_error_factors=0)
                               .fit(catalog, X).theta_, rtol=1e-10, atol=1e-12)


def test_a_star_with_a_missing_label_trains_and_gets_it_inferred(planted):
    train, X, _, test, X_test = planted
    rng = np.random.default_rng(3)
    labels = train.copy()
    lacking = rng.random(len(labels)) < 0.3
    labels[lacking, rng.integers(0, 2, lacking.sum())] = np.nan   # 30 % lack one label
    with pytest.raises(LabelError, match="missing"):                # today's behaviour
        Cannon(NAMES, n_error_factors=0).fit(labels, X)
    complete = Cannon(NAMES, n_error_factors=0).fit(train, X)
    inferred = Cannon(NAMES, n_error_factors=0, missing_labels="infer").fit(labels, X)
    dropped = Cannon(NAMES, n_error_factors=0, missing_labels="drop").fit(labels, X)
    assert inferred.n_training_stars_ == len(X)
    assert dropped.n_training_stars_ == len(X) - lacking.sum() == len(X) - len(dropped.dropped_)
    assert dropped.dropped_["reason"].str.contains("missing_labels='drop'").all()
    _, complete_scatter = _slopes(complete, test, X_test)
    _, inferred_scatter = _slopes(inferred, test, X_test)
    assert np.all(inferred_scatter < 1.1 * complete_scatter)
    known = np.isfinite(labels)
    np.testing.assert_array_equal(inferred.training_labels_[known], labels[known])
    missing = ~known
    assert np.all(np.abs(inferred.training_labels_ - train)[missing]
                  < 5 * np.where(missing, [20.0, 0.03], 0)[missing])


def test_catalog_nulls_count_as_missing(planted):
    train, X, _, _, _ = planted
    labels = train.copy()
    labels[:10, 1] = -9999.0
    model = Cannon(NAMES, n_error_factors=0, missing_labels="infer", label_iterations=2)
    model.fit(labels, X)
    assert np.all(model.training_labels_[:10, 1] > 0)


@pytest.mark.parametrize("err, message", [
    (np.array([1.0, np.nan]), "NaN or negative"), (np.array([1.0, -1.0]), "NaN or negative"),
    (np.ones((3, 3)), "shape"), ("abc", "not numbers")])
def test_bad_label_errors_are_named(err, message):
    with pytest.raises(LabelError, match=message):
        check_label_err(err, (5, 2), NAMES)


def test_label_errors_from_a_table_by_err_columns():
    import pandas as pd

    table = pd.DataFrame({"TEFF_ERR": [50.0, 60.0], "LOGG": [0.1, 0.2]})
    np.testing.assert_array_equal(check_label_err(table, (2, 2), NAMES),
                                  [[50.0, 0.1], [60.0, 0.2]])


def test_the_prior_is_added_to_chi2_exactly():
    rng = np.random.default_rng(1)
    from skcannon.model.vectorizer import PolynomialVectorizer

    vec = PolynomialVectorizer(2, order=2)
    theta = rng.normal(size=(50, vec.n_terms))
    flux = rng.normal(size=(4, 50))
    centre = vec.design_matrix(rng.normal(size=(4, 2)))
    stats = sufficient_statistics(theta, np.full(50, 0.01), np.ones(50, bool), flux,
                                  np.ones((4, 50)), centre=centre)
    mean, precision = rng.normal(size=(4, 2)), np.array([[1.0, 0], [2, 3], [0, 0], [5, 1]])
    linear = [vec.terms.index((i,)) for i in range(2)]
    labels = rng.normal(size=(4, 2))
    design, stars = vec.design_matrix(labels), np.arange(4)
    expected = chi2_of(stats, design, stars) + np.sum(precision * (labels - mean) ** 2, axis=1)
    np.testing.assert_allclose(chi2_of(add_label_prior(stats, linear, mean, precision),
                                       design, stars), expected, rtol=1e-10)


def test_the_gauge_step_undoes_an_affine_stretch():
    rng = np.random.default_rng(2)
    truth = rng.normal(size=(200, 2))
    catalog = truth + rng.normal(size=truth.shape) * 0.3
    stretched = 1.3 * truth + 0.5
    out = fix_gauge(stretched, catalog, np.full_like(catalog, 0.3))
    assert np.std(out - truth) < 0.05


def test_cli_train_with_label_errors_and_missing_labels(planted, tmp_path, capsys):
    from skcannon.cli import main

    _, X, catalog, _, _ = planted
    arrays = {"flux": X[:, 0], "ivar": X[:, 1], "TEFF": catalog[:, 0], "LOGG": catalog[:, 1]}
    np.savez(tmp_path / "plain.npz", **arrays)
    np.savez(tmp_path / "errors.npz", TEFF_ERR=np.full(len(X), ERR[0]),
             LOGG_ERR=np.full(len(X), ERR[1]), **arrays)
    common = ["--labels", "TEFF", "LOGG", "--no-progress"]
    assert main(["train", str(tmp_path / "errors.npz"), "-o", str(tmp_path / "m.h5"),
                 "--label-errors", *common]) == 0
    assert "label posteriors" in capsys.readouterr().out
    assert main(["train", str(tmp_path / "plain.npz"), "-o", str(tmp_path / "n.h5"),
                 "--label-errors", *common]) == 2
    assert "--label-errors needs the column(s) TEFF_ERR, LOGG_ERR" in capsys.readouterr().err
    assert not (tmp_path / "n.h5").exists()
    arrays["LOGG"] = np.where(np.arange(len(X)) % 3 == 0, np.nan, catalog[:, 1])
    np.savez(tmp_path / "missing.npz", **arrays)
    assert main(["train", str(tmp_path / "missing.npz"), "-o", str(tmp_path / "k.h5"),
                 *common]) == 2                                  # today's behaviour: refused
    assert main(["train", str(tmp_path / "missing.npz"), "-o", str(tmp_path / "k.h5"),
                 "--missing-labels", "infer", *common]) == 0
    assert "stars              300" in capsys.readouterr().out


def test_grid_search_chooses_label_errors_with_label_err_split_per_fold(planted):
    from sklearn.model_selection import GridSearchCV

    from skcannon.model import CannonRegressor

    _, X, catalog, _, _ = planted
    search = GridSearchCV(
        CannonRegressor(Cannon(NAMES, n_error_factors=0, label_iterations=3)),
        {"cannon__label_errors": ["ignore", "prior"]}, cv=2)
    search.fit(X, catalog, label_err=np.tile(ERR, (len(X), 1)))
    assert search.best_params_ in ({"cannon__label_errors": "ignore"},
                                   {"cannon__label_errors": "prior"})
    assert search.best_estimator_.cannon_.n_training_stars_ == len(X)
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores)) and scores[0] != scores[1]


def test_calibration_and_files_work_with_posterior_labels(planted, tmp_path):
    _, X, catalog, _, X_test = planted
    labels = catalog.copy()
    labels[::4, 1] = np.nan
    model = Cannon(NAMES, n_error_factors=0, missing_labels="infer", label_iterations=2,
                   calibration_folds=2).fit(labels, X, label_err=ERR)
    assert np.all(np.isfinite(model.calibration_)) and np.all(model.calibration_ >= 0)
    model.save(tmp_path / "m.h5")
    loaded = Cannon.load(tmp_path / "m.h5")
    np.testing.assert_array_equal(loaded.theta_, model.theta_)
    np.testing.assert_allclose(loaded.infer_labels(X_test[:5]).labels,
                               model.infer_labels(X_test[:5]).labels)
    with pytest.raises(ValueError, match="clean_k"):
        Cannon(NAMES, n_error_factors=0, missing_labels="infer", clean_k=3).fit(labels, X)
