"""Accuracy on REAL spectra: skcannon vs Anna Ho's TheCannon 0.7.3 on identical folds.

Data: ../shared/apogee/real_labelled/real_giants_100px.npz - 336 real APOGEE red giants,
continuum-normalized, 100 pixels each, ASPCAP labels TEFF, LOGG, PARAM_M_H. Protocol:
5 repeats x 2-fold cross-validation (partition r shuffled with random_state r), every
implementation on the same folds (``skcannon.evaluation.repeated_kfold``); bias, scatter and
robust scatter per label, averaged over repeats, with their sd over repeats. Each skcannon
variant is one estimator parameter (what each improvement gives, also where it gives nothing).
TheCannon is a benchmark-only dependency (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from benchmarks.common import SHARED

REAL_SET = SHARED / "apogee" / "real_labelled" / "real_giants_100px.npz"
REAL_LABELS = ("TEFF", "LOGG", "PARAM_M_H")
N_REPEATS, N_SPLITS = 5, 2
#: skcannon variants: name -> Cannon parameters (the default first).
#: Folds of the uncertainty calibration measured here (``calibration_folds``).
CALIBRATION_FOLDS = 10
VARIANTS = {
    "default": {},
    "classic": {"n_error_factors": 0},
    "order3": {"order": 3},
    "cleaned": {"clean_k": 4.0},
    "l1": {"regularization": 100.0},
}


class TheCannonRegressor(RegressorMixin, BaseEstimator):
    """Ho's TheCannon (quadratic, useErrors=False) behind fit(spectra, labels)/predict."""

    def fit(self, X, y):
        from TheCannon import model

        self.train_ = (X[:, 0].copy(), X[:, 1].copy(), np.asarray(y, float))
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model_ = model.CannonModel(2, useErrors=False)
            self.model_.train(self._dataset(X[:1]))
        return self

    def _dataset(self, X):
        from TheCannon import dataset

        flux, ivar, labels = self.train_
        ds = dataset.Dataset(np.arange(flux.shape[1]), np.arange(len(flux)).astype(str), flux,
                             ivar, labels, np.arange(len(X)).astype(str), X[:, 0].copy(),
                             X[:, 1].copy())
        ds.set_label_names(list(REAL_LABELS))
        return ds

    def predict(self, X):
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = self._dataset(X)
            self.model_.infer_labels(ds)
        return np.asarray(ds.test_label_vals, float)


def _timed(estimator, X, y) -> tuple[float, float]:
    """Seconds to train on all stars, and to infer all of them."""
    start = time.perf_counter()
    estimator.fit(X, y)
    trained = time.perf_counter()
    estimator.predict(X)
    return trained - start, time.perf_counter() - trained


def run() -> dict:
    from skcannon.data import load_labelled_arrays
    from skcannon.evaluation import held_out_pulls, repeated_kfold
    from skcannon.model import Cannon, CannonRegressor

    real = load_labelled_arrays(REAL_SET)
    X, y = real.X, real.table[list(REAL_LABELS)].to_numpy(float)
    figures = {"real_data_source": f"real: {len(y)} APOGEE red giants (DR12 ASPCAP labels), "
               f"{X.shape[2]} normalized pixels each ({REAL_SET.name}); {N_REPEATS} x "
               f"{N_SPLITS}-fold CV, identical folds for every implementation",
               "real_n_stars": int(len(y))}
    summaries = {}
    for name, params in VARIANTS.items():
        estimator = CannonRegressor(Cannon(REAL_LABELS, **params))
        summaries[name] = repeated_kfold(estimator, X, y, REAL_LABELS, n_repeats=N_REPEATS,
                                         n_splits=N_SPLITS).summary.set_index("label")
    ours = summaries["default"]
    calibrated = CannonRegressor(Cannon(REAL_LABELS, calibration_folds=CALIBRATION_FOLDS))
    pull_table = held_out_pulls(calibrated, X, y, REAL_LABELS, n_repeats=N_REPEATS,
                                n_splits=N_SPLITS).set_index("label")
    for label in REAL_LABELS:
        figures[f"real_formal_pull_sd_{label}"] = round(
            float(pull_table.loc[label, "formal_pull_sd"]), 4)
        figures[f"real_calibrated_pull_sd_{label}"] = round(
            float(pull_table.loc[label, "pull_sd"]), 4)
    train_s, infer_s = _timed(CannonRegressor(Cannon(REAL_LABELS)), X, y)
    figures.update({"real_train_s": round(train_s, 3), "real_infer_s": round(infer_s, 3)})
    for label in REAL_LABELS:
        for metric in ("bias", "scatter", "robust_scatter"):
            figures[f"real_{metric}_{label}"] = round(float(ours.loc[label, metric]), 5)
            figures[f"real_{metric}_sd_{label}"] = round(float(ours.loc[label, f"{metric}_sd"]),
                                                         5)
        for name, summary in summaries.items():
            if name != "default":
                figures[f"real_{name}_robust_scatter_{label}"] = round(
                    float(summary.loc[label, "robust_scatter"]), 5)
    try:
        import TheCannon  # noqa: F401
    except ImportError:
        print("TheCannon is not installed (pip install -e '.[bench]'): no comparison measured")
        return figures
    theirs = repeated_kfold(TheCannonRegressor(), X, y, REAL_LABELS, n_repeats=N_REPEATS,
                            n_splits=N_SPLITS).summary.set_index("label")
    their_train, their_infer = _timed(TheCannonRegressor(), X, y)
    figures.update({"real_thecannon_train_s": round(their_train, 3),
                    "real_thecannon_infer_s": round(their_infer, 3)})
    for label in REAL_LABELS:
        for metric in ("bias", "scatter", "robust_scatter"):
            figures[f"real_thecannon_{metric}_{label}"] = round(
                float(theirs.loc[label, metric]), 5)
        figures[f"real_thecannon_robust_scatter_sd_{label}"] = round(
            float(theirs.loc[label, "robust_scatter_sd"]), 5)
        for name, summary in summaries.items():
            ratio = summary.loc[label, "robust_scatter"] / theirs.loc[label, "robust_scatter"]
            key = "" if name == "default" else f"{name}_"
            figures[f"real_{key}robust_scatter_change_vs_thecannon_{label}"] = round(
                float(ratio - 1), 4)
    return figures


if __name__ == "__main__":
    from benchmarks.common import record

    print(record(run()))
