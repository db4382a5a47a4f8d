"""The scikit-learn contract for the Cannon estimators: scikit-learn's own checks, parameters
validated at fit from one declaration, keyword-only options, check_is_fitted, and a predict
that never changes the estimator."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from skcannon.apogee.reference import REFERENCE_LABELS
from skcannon.model import Cannon, CannonRegressor
from tests.conftest import CONTRACT_CHECKS, run_contract_check

# The Cannon maps labels (X, one column per name in label_names) to spectra (y, shape
# (n_stars, 3, n_pixels)). scikit-learn's generic checks fit on random 2-D X of their own width
# and a 1-D or 2-D y, which no labels -> spectra model can take: these checks fail before
# reaching what they test, and are expected to.
_WIDTH = ("X must have one column per name in label_names; the check fits on X of its own "
          "width")
_TARGET = "y must be a spectra array (n_stars, 3, n_pixels); the check passes a 1-D/2-D y"
CANNON_EXPECTED_FAILURES = {
    **{name: _WIDTH for name in (
        "check_fit_score_takes_y", "check_dont_overwrite_parameters",
        "check_n_features_in_after_fitting", "check_complex_data", "check_dtype_object",
        "check_estimators_empty_data_messages", "check_pipeline_consistency",
        "check_estimators_nan_inf", "check_estimator_sparse_tag", "check_estimator_sparse_array",
        "check_estimator_sparse_matrix", "check_estimators_pickle",
        "check_f_contiguous_array_estimator", "check_methods_sample_order_invariance",
        "check_methods_subset_invariance", "check_fit2d_1sample", "check_fit2d_1feature",
        "check_dict_unchanged", "check_fit2d_predict1d", "check_positive_only_tag_during_fit",
        "check_requires_y_none")},
    **{name: _TARGET for name in (
        "check_estimators_overwrite_params", "check_estimators_fit_returns_self",
        "check_readonly_memmap_input", "check_estimators_dtypes", "check_fit_idempotent",
        "check_fit_check_is_fitted", "check_n_features_in")},
}
# CannonRegressor takes spectra arrays as X (its three_d_array tag), so scikit-learn skips its
# data checks itself; the contract checks that need no data (CONTRACT_CHECKS) run for it below.
ESTIMATORS = [Cannon(), CannonRegressor()]


def expected_failures(estimator) -> dict[str, str]:
    return CANNON_EXPECTED_FAILURES if isinstance(estimator, Cannon) else {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("check_name", CONTRACT_CHECKS)
def test_sklearn_contract_checks(estimator, check_name):
    run_contract_check(estimator, check_name)


BAD_PARAMETERS = [({"regularization": -5}, "regularization"),
                  ({"min_good_fraction": 7}, "min_good_fraction"),
                  ({"min_good_fraction": 0}, "min_good_fraction"), ({"order": 4}, "order"),
                  ({"order": 1.5}, "order")]


REGRESSOR_PARAMETERS = [({"n_starts": -1}, "n_starts"), ({"margin": -0.1}, "margin"),
                        ({"seed": 0.5}, "seed"), ({"method": "newton"}, "method"),
                        ({"cannon": "not a model"}, "cannon")]


def _build(estimator, params: dict):
    """``estimator`` with ``params``; a regressor passes the Cannon's own to its ``cannon``."""
    names = list(REFERENCE_LABELS)
    if estimator is Cannon:
        return Cannon(names, **params)
    own = {k: v for k, v in params.items() if k in CannonRegressor._parameter_constraints}
    cannon = Cannon(names, **{k: v for k, v in params.items() if k not in own})
    return CannonRegressor(**{"cannon": cannon, **own})


@pytest.mark.parametrize(("estimator", "params", "name", "owner"), [
    *[(Cannon, p, n, "Cannon") for p, n in [*BAD_PARAMETERS, ({"verbose": -1}, "verbose")]],
    # a Cannon parameter of a regressor is the wrapped Cannon's, refused by it at fit
    *[(CannonRegressor, p, n, "Cannon") for p, n in BAD_PARAMETERS],
    *[(CannonRegressor, p, n, "CannonRegressor") for p, n in REGRESSOR_PARAMETERS],
], ids=lambda v: v.__name__ if isinstance(v, type) else str(v))
def test_bad_parameters_are_refused_at_fit(estimator, params, name, owner, simulated_set):
    labels, X, _ = simulated_set
    model = _build(estimator, params)                 # construction accepts anything
    data = (labels.iloc[:60], X[:60]) if estimator is Cannon else (X[:60], labels.iloc[:60])
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of {owner} "):
        model.fit(*data)
    assert not hasattr(model, "theta_") and not hasattr(model, "cannon_")
    if estimator is CannonRegressor and isinstance(model.cannon, Cannon):
        assert not hasattr(model.cannon, "theta_")    # the parameter itself is never fitted


@pytest.mark.parametrize("estimator", [Cannon, CannonRegressor], ids=lambda c: c.__name__)
@pytest.mark.parametrize("names", [("TEFF", "TEFF", "LOGG", "FE_H"), ("TEFF", ""), ()])
def test_label_names_must_be_distinct_strings(estimator, names, simulated_set):
    labels, X, _ = simulated_set
    data = (labels.iloc[:60], X[:60]) if estimator is Cannon else (X[:60], labels.iloc[:60])
    model = Cannon(names) if estimator is Cannon else CannonRegressor(Cannon(names))
    with pytest.raises(ValueError, match="label_names must be distinct"):
        model.fit(*data)


def test_each_cannon_parameter_is_declared_once():
    """The regressor wraps the Cannon (its ``cannon`` parameter) instead of repeating its
    parameters, and GridSearchCV reaches them as ``cannon__<name>``."""
    cannon, regressor = Cannon._parameter_constraints, CannonRegressor._parameter_constraints
    assert not set(cannon) & set(regressor)
    assert set(regressor) == {"cannon", "method", "n_starts", "margin", "seed", "fit_rv",
                              "rv_max", "continuum_order"}
    for estimator in (Cannon, CannonRegressor):   # every parameter is declared
        params = inspect.signature(estimator.__init__).parameters
        assert set(params) - {"self"} == set(estimator._parameter_constraints)
    deep = CannonRegressor(Cannon(order=1)).get_params(deep=True)
    assert {f"cannon__{name}" for name in cannon} <= set(deep) and deep["cannon__order"] == 1
    changed = CannonRegressor(Cannon()).set_params(cannon__order=3, n_starts=1)
    assert changed.cannon.order == 3 and changed.n_starts == 1


def test_regressor_fit_clones_its_cannon(simulated_set):
    labels, X, _ = simulated_set
    names = list(REFERENCE_LABELS)
    inner = Cannon(names, order=1)
    regressor = CannonRegressor(inner, n_starts=1).fit(X[:120], labels[names].to_numpy()[:120])
    assert regressor.cannon_ is not inner and not hasattr(inner, "theta_")
    assert regressor.cannon_.order == 1 and regressor.cannon_.theta_.shape[1] == 5
    default = CannonRegressor().get_params()["cannon"]
    assert default is None


def test_from_fitted_wraps_without_retraining(reference_model, simulated_set):
    from sklearn.base import clone

    _, X, _ = simulated_set
    regressor = CannonRegressor.from_fitted(reference_model, n_starts=2, seed=3)
    assert regressor.cannon_ is reference_model
    assert not hasattr(regressor.cannon, "theta_")            # the parameter stays unfitted
    assert regressor.cannon.get_params() == reference_model.get_params()
    np.testing.assert_array_equal(
        regressor.predict(X[:20]),
        reference_model.infer_labels(X[:20], n_starts=2, seed=3).labels)
    copy = clone(regressor)
    assert not hasattr(copy, "cannon_") and copy.get_params()["n_starts"] == 2
    with pytest.raises(NotFittedError):
        CannonRegressor.from_fitted(Cannon())


#: The package and the subpackages whose ``__all__`` make up the public API.
PUBLIC_MODULES = ("skcannon", "skcannon.apogee", "skcannon.preprocessing", "skcannon.model",
                  "skcannon.inference", "skcannon.plotting", "skcannon.data",
                  "skcannon.evaluation", "skcannon.report")


def public_callables():
    """Functions and estimator classes exported by the public modules (dataclass records,
    built by keyword, are not options lists and are left out)."""
    import importlib

    seen = set()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            value = getattr(module, name)
            if id(value) in seen:
                continue
            seen.add(id(value))
            if inspect.isclass(value) and hasattr(value, "get_params"):
                yield f"{module_name}.{name}", value.__init__
            elif inspect.isfunction(value):
                yield f"{module_name}.{name}", value


@pytest.mark.parametrize(("name", "function"), list(public_callables()))
def test_options_are_keyword_only(name, function):
    """After the first argument (the data, or an estimator's first parameter), every parameter
    with a default is keyword-only."""
    params = [p for p in inspect.signature(function).parameters.values() if p.name != "self"]
    positional = [p.name for p in params[1:] if p.default is not inspect.Parameter.empty
                  and p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert not positional, f"{name}: {positional} should be keyword-only"


@pytest.mark.parametrize("method", ["predict", "gradient", "infer_labels", "log_likelihood",
                                    "score", "label_bounds", "save", "state_"])
def test_unfitted_cannon_raises_not_fitted(method, tmp_path):
    model = Cannon(list(REFERENCE_LABELS))
    labels = np.array([[4500.0, 2.5, 0.0, 0.1]])
    spectra = np.ones((1, 3, 10))
    calls = {"predict": lambda: model.predict(labels), "gradient": lambda: model.gradient(labels),
             "infer_labels": lambda: model.infer_labels(spectra),
             "log_likelihood": lambda: model.log_likelihood(labels, spectra),
             "score": lambda: model.score(labels, spectra), "label_bounds": model.label_bounds,
             "save": lambda: model.save(tmp_path / "m.h5"), "state_": lambda: model.state_}
    with pytest.raises(NotFittedError):
        calls[method]()
    assert not (tmp_path / "m.h5").exists()


def test_regressor_predict_does_not_change_the_estimator(simulated_set):
    labels, X, _ = simulated_set
    names = list(REFERENCE_LABELS)
    regressor = CannonRegressor(Cannon(names)).fit(X[:200], labels[names].to_numpy()[:200])
    before = dict(vars(regressor))
    predicted = regressor.predict(X[200:230])
    assert vars(regressor).keys() == before.keys()
    assert all(vars(regressor)[k] is v for k, v in before.items())
    full = regressor.infer_labels(X[200:230])
    np.testing.assert_array_equal(full.labels, predicted)
    assert full.covariance.shape == (30, 4, 4)


def test_grid_search_reaches_the_cannon_through_the_regressor(simulated_set):
    """One Pipeline, one search: GridSearchCV tunes the wrapped Cannon's parameters
    (``cannonregressor__cannon__*``) beside the regressor's and a transformer's."""
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.pipeline import make_pipeline

    from skcannon.evaluation.metrics import label_scorers
    from skcannon.preprocessing import BitmaskMasker

    labels, X, _ = simulated_set
    names = list(REFERENCE_LABELS)
    pipeline = make_pipeline(BitmaskMasker(), CannonRegressor(Cannon(names, n_error_factors=0),
                                                              n_starts=1))
    grid = {"cannonregressor__cannon__order": [1, 2],
            "cannonregressor__cannon__regularization": [0.0],
            "bitmaskmasker__bad_bits": [(0,)]}
    search = GridSearchCV(pipeline, grid, scoring=label_scorers(names),
                          refit="robust_scatter_TEFF", cv=KFold(2, shuffle=True, random_state=0))
    search.fit(X[:240, :, :2000], labels[names].to_numpy()[:240])
    assert set(search.best_params_) == set(grid)
    assert search.best_params_["cannonregressor__cannon__order"] == 2   # the truth is quadratic
    assert search.best_estimator_[-1].cannon_.order == 2
    assert search.best_estimator_[0].bad_bits == (0,)
