"""A fitted estimator whose parameters changed after fit refuses to be used until refitted,
naming the parameter (never labels swapped, never a shape error deep inside); and the methods
taking labels and spectra together refuse rows that do not pair up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

import skcannon
from skcannon.model import Cannon, CannonRegressor
from skcannon.spectra import stack_spectra

NAMES = ("TEFF", "LOGG", "FE_H")


def small_set(n: int = 60, p: int = 30, seed: int = 0):
    """Labels (DataFrame) and spectra (n, 3, p) with flux depending on every label."""
    rng = np.random.default_rng(seed)
    labels = pd.DataFrame({"TEFF": rng.uniform(4000, 5200, n), "LOGG": rng.uniform(1, 3.5, n),
                           "FE_H": rng.uniform(-1, 0.3, n)})
    scaled = (labels.to_numpy() - labels.to_numpy().mean(axis=0)) / labels.to_numpy().std(0)
    weights = rng.normal(0, 0.03, (3, p))
    flux = 0.9 + scaled @ weights + 0.01 * scaled[:, :1] ** 2 + rng.normal(0, 0.005, (n, p))
    return labels, stack_spectra(flux, np.full((n, p), 4e4))


@pytest.fixture(scope="module")
def data():
    return small_set()


@pytest.fixture
def fitted(data):
    labels, X = data
    return Cannon(NAMES, n_error_factors=0).fit(labels, X)


def _uses(model, labels, X, tmp_path):
    """Every way of using a fitted Cannon."""
    values = labels[list(NAMES)].to_numpy()[:3]
    return {"predict": lambda: model.predict(values),
            "gradient": lambda: model.gradient(values),
            "infer_labels": lambda: model.infer_labels(X[:3]),
            "log_likelihood": lambda: model.log_likelihood(values, X[:3]),
            "score": lambda: model.score(values, X[:3]),
            "label_bounds": lambda: model.label_bounds(),
            "state_": lambda: model.state_,
            "save": lambda: model.save(tmp_path / "m.h5"),
            "skcannon.save": lambda: skcannon.save(model, tmp_path / "e.h5")}


@pytest.mark.parametrize("change", [
    {"label_names": ("TEFF", "FE_H", "LOGG")}, {"order": 1}, {"terms": "TEFF LOGG FE_H"},
    {"n_error_factors": 3}, {"regularization": 0.1},
    {"censors": {"FE_H": np.arange(30) < 20}}])
def test_changed_parameters_refuse_every_use_naming_the_parameter(fitted, data, tmp_path,
                                                                   change):
    labels, X = data
    expected = fitted.predict(labels[list(NAMES)].to_numpy()[:3])
    original = {name: fitted.get_params()[name] for name in change}
    fitted.set_params(**change)
    name = next(iter(change))
    for use, call in _uses(fitted, labels, X, tmp_path).items():
        with pytest.raises(NotFittedError, match=f"Cannon: {name} was .* at fit and is now"):
            call()
        assert not (tmp_path / "m.h5").exists() and not (tmp_path / "e.h5").exists(), use
    fitted.set_params(**original)                        # set back: usable, unchanged
    np.testing.assert_array_equal(fitted.predict(labels[list(NAMES)].to_numpy()[:3]), expected)


def test_swapped_label_names_never_give_swapped_values(fitted, data, tmp_path):
    labels, X = data
    fitted.set_params(label_names=["TEFF", "FE_H", "LOGG"])
    with pytest.raises(NotFittedError, match="label_names was"):
        fitted.infer_labels(X[:2])
    refit = fitted.fit(labels, X)                        # refitting makes it usable again
    fit = refit.infer_labels(X[:5])
    np.testing.assert_allclose(fit.labels[:, 1], labels.FE_H[:5], atol=0.15)
    np.testing.assert_allclose(fit.labels[:, 2], labels.LOGG[:5], atol=0.3)


def test_verbose_and_a_loaded_model(fitted, data, tmp_path):
    labels, X = data
    fitted.set_params(verbose=1)                         # changes nothing learned
    fitted.predict(labels[list(NAMES)].to_numpy()[:2])
    loaded = Cannon.load(fitted.set_params(verbose=0).save(tmp_path / "m.h5"))
    loaded.predict(labels[list(NAMES)].to_numpy()[:2])
    loaded.set_params(order=1)
    with pytest.raises(NotFittedError, match="order was 2 at fit and is now 1"):
        loaded.predict(labels[list(NAMES)].to_numpy()[:2])


def test_the_regressor_refuses_a_changed_cannon(data, tmp_path):
    labels, X = data
    regressor = CannonRegressor(Cannon(NAMES, n_error_factors=0)).fit(X, labels)
    expected = regressor.predict(X[:2])
    regressor.set_params(cannon__order=1)
    for call in (lambda: regressor.predict(X[:2]), lambda: regressor.infer_labels(X[:2]),
                 lambda: regressor.score(X[:2], labels[:2]),
                 lambda: skcannon.save(regressor, tmp_path / "r.h5")):
        with pytest.raises(NotFittedError, match="CannonRegressor cannon: order was 2"):
            call()
    regressor.set_params(cannon__order=2, n_starts=2)    # inference options are free
    regressor.set_params(n_starts=4)
    np.testing.assert_array_equal(regressor.predict(X[:2]), expected)
    loaded = skcannon.load(skcannon.save(regressor, tmp_path / "r.h5"))
    np.testing.assert_array_equal(loaded.predict(X[:2]), expected)
    loaded.set_params(cannon__label_names=("LOGG", "TEFF", "FE_H"))
    with pytest.raises(NotFittedError, match="label_names was"):
        loaded.predict(X[:2])


def test_rows_that_do_not_pair_up_are_named(fitted, data):
    labels, X = data
    values = labels[list(NAMES)].to_numpy()
    with pytest.raises(ValueError, match="3 label rows but 5 spectra"):
        fitted.log_likelihood(values[:3], X[:5])
    with pytest.raises(ValueError, match="5 label rows but 3 spectra"):
        fitted.score(values[:5], X[:3])
    assert np.isfinite(fitted.score(values[:5], X[:5]))
