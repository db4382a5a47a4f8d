"""Cross-validation with scikit-learn's own tools (outliers: :mod:`skcannon.evaluation.outliers`).

Every helper takes ``(estimator, X, y)``, estimator first, as scikit-learn's own.

* :func:`split_validate`: ``train_test_split`` into halves (explicit ``random_state``), train a
  :class:`CannonRegressor` on one, fit labels of the other, compare with the reference labels.
* :func:`kfold_validate`: ``cross_validate`` with ``KFold`` over any estimator or Pipeline ending
  in a :class:`CannonRegressor`, scored per label.
* :func:`repeated_kfold`: ``cross_val_predict`` over several shuffled ``KFold`` partitions
  (fixed seeds, so two estimators see identical folds): bias, scatter and robust scatter per
  label and repeat, with their mean and spread over repeats.
* :func:`grid_search`: ``GridSearchCV`` over e.g. ``cannon__regularization``.
* :func:`held_out_pulls`: pull widths of held-out stars with formal and calibrated uncertainties.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    cross_val_predict,
    cross_validate,
    train_test_split,
)

from skcannon.evaluation.metrics import accuracy_by_snr, accuracy_table, label_scorers, pulls
from skcannon.labels import error_column
from skcannon.model.cannon import Cannon


@dataclass
class SplitValidation:
    """Result of :func:`split_validate`.

    Attributes
    ----------
    model : Cannon trained on the training half
    train_index, test_index : ndarray of int
    reference : ndarray (n_test, L) reference labels of the test half
    fit : LabelFit of the test half
    accuracy : DataFrame  bias / scatter / robust scatter per label
    by_snr : DataFrame  the same in SNR bins
    pulls : ndarray (n_test, L)
    """

    model: Cannon
    train_index: np.ndarray
    test_index: np.ndarray
    reference: np.ndarray
    fit: object
    accuracy: pd.DataFrame
    by_snr: pd.DataFrame
    pulls: np.ndarray


def split_validate(estimator, X: np.ndarray, labels: pd.DataFrame, *, random_state: int = 42,
                   test_size: float = 0.5, wavelength=None) -> SplitValidation:
    """Train on one half, infer the other (the mission's setup).

    Parameters
    ----------
    estimator : CannonRegressor
        Unfitted; cloned and trained on the training half (its ``cannon`` names the labels,
        its label-fitting options fit the test half).
    X : ndarray, shape (n_stars, 3, n_pixels)
        Normalized spectra.
    labels : DataFrame, n_stars rows
        The label columns, optionally their ``_ERR`` columns (used in the pulls) and ``SNR``.
    random_state : int, default=42
        Seed of ``train_test_split``.
    test_size : float, default=0.5
        Fraction of the stars in the test half.
    wavelength : array_like, shape (n_pixels,), optional
        Stored with the model.

    Returns
    -------
    SplitValidation
    """
    from sklearn.base import clone

    train_index, test_index = train_test_split(np.arange(len(X)), test_size=test_size,
                                               random_state=random_state)
    regressor = clone(estimator).fit(X[train_index], labels.iloc[train_index],
                                     wavelength=wavelength)
    model = regressor.cannon_
    label_names = list(model.label_names)
    fit = regressor.infer_labels(X[test_index])
    reference = labels.iloc[test_index][label_names].to_numpy(float)
    errors = [error_column(name) for name in label_names]
    reference_sigma = (labels.iloc[test_index][errors].to_numpy(float)
                       if all(e in labels.columns for e in errors) else None)
    snr = (labels.iloc[test_index]["SNR"].to_numpy(float) if "SNR" in labels.columns
           else np.full(len(test_index), np.nan))
    return SplitValidation(
        model=model, train_index=train_index, test_index=test_index, reference=reference,
        fit=fit, accuracy=accuracy_table(reference, fit.labels, label_names),
        by_snr=accuracy_by_snr(reference, fit.labels, snr, label_names),
        pulls=pulls(reference, fit.labels, fit.uncertainties, sigma_true=reference_sigma))


def kfold_validate(estimator, X, y, label_names: Sequence[str], *, n_splits: int = 5,
                   random_state: int = 42, progress: bool = False) -> pd.DataFrame:
    """``cross_validate`` with shuffled ``KFold``; one row per fold, bias and scatter per label
    (scatters reported positive).

    Parameters
    ----------
    estimator : CannonRegressor or Pipeline ending in one
        Unfitted; cloned and trained on each fold's training part by ``cross_validate``.
    X : ndarray, shape (n_stars, 3, n_pixels)
        Normalized spectra (raw ones for a Pipeline that normalizes them).
    y : array_like, shape (n_stars, n_labels)
        Reference labels, in the order of ``label_names``.
    label_names : sequence of str of length n_labels
        Names of the label columns of ``y`` (the scorers', see :func:`label_scorers`).
    n_splits : int, default=5
        Number of folds.
    random_state : int, default=42
        Seed of the ``KFold`` shuffle.
    progress : bool, default=False
        One line per fold on stderr as it finishes (scikit-learn's ``verbose=2`` lines, with
        the fold's scores and times).

    Returns
    -------
    DataFrame, shape (n_splits, n_columns)
        Columns ``fold``, ``fit_time``, ``score_time``, then ``bias_<LABEL>``,
        ``scatter_<LABEL>`` and ``robust_scatter_<LABEL>`` of the held-out fold per label.
    """
    with contextlib.redirect_stdout(sys.stderr if progress else sys.stdout):
        scores = cross_validate(estimator, X, y, cv=KFold(n_splits, shuffle=True,
                                                          random_state=random_state),
                                scoring=label_scorers(label_names), verbose=2 if progress else 0)
    table = pd.DataFrame({k.removeprefix("test_"): v for k, v in scores.items()})
    for column in table.columns:
        if "scatter" in column:
            table[column] = -table[column]
    table.insert(0, "fold", np.arange(len(table)))
    return table


@dataclass
class RepeatedValidation:
    """Result of :func:`repeated_kfold`.

    Attributes
    ----------
    per_repeat : DataFrame  one row per repeat and label: bias, scatter, robust_scatter
    summary : DataFrame  one row per label: the mean of each metric and its sd over repeats
    predictions : ndarray (n_repeats, n_stars, L)  held-out predictions of every repeat
    """

    per_repeat: pd.DataFrame
    summary: pd.DataFrame
    predictions: np.ndarray


def repeated_kfold(estimator, X, y, label_names: Sequence[str], *, n_repeats: int = 5,
                   n_splits: int = 2, seed: int = 0) -> RepeatedValidation:
    """Held-out predictions of every star in ``n_repeats`` shuffled ``n_splits``-fold
    partitions (partition r uses ``random_state=seed + r``), compared with ``y``.

    Parameters
    ----------
    estimator : CannonRegressor or Pipeline ending in one
        Unfitted; cloned and trained on each fold's training part by ``cross_val_predict``.
    X : ndarray, shape (n_stars, 3, n_pixels)
        Normalized spectra (raw ones for a Pipeline that normalizes them).
    y : array_like, shape (n_stars, n_labels)
        Reference labels, in the order of ``label_names``.
    label_names : sequence of str of length n_labels
        Names of the label columns of ``y``.
    n_repeats : int, default=5
        Number of partitions.
    n_splits : int, default=2
        Folds per partition.
    seed : int, default=0
        Seed of the first partition's shuffle (same seeds, same folds for any estimator).

    Returns
    -------
    RepeatedValidation
        Per repeat and label bias, scatter and robust scatter, their mean and sd over repeats,
        and the held-out predictions, shape (n_repeats, n_stars, n_labels).

    Raises
    ------
    ValueError
        When there are fewer than ``2 * n_splits`` stars.
    """
    y = np.asarray(y, float)
    if len(y) < 2 * n_splits:
        raise ValueError(f"{len(y)} stars are too few for {n_splits}-fold cross-validation")
    predictions = np.stack([
        cross_val_predict(estimator, X, y, cv=KFold(n_splits, shuffle=True,
                                                    random_state=seed + r))
        for r in range(n_repeats)])
    rows = []
    for r, predicted in enumerate(predictions):
        table = accuracy_table(y, predicted, label_names)
        table.insert(0, "repeat", r)
        rows.append(table)
    per_repeat = pd.concat(rows, ignore_index=True)
    metrics = ["bias", "scatter", "robust_scatter"]
    grouped = per_repeat.groupby("label", sort=False)[metrics]
    summary = grouped.mean().join(grouped.std(ddof=1).add_suffix("_sd")).reset_index()
    return RepeatedValidation(per_repeat, summary, predictions)


def grid_search(estimator, X, y, param_grid: dict, label_names: Sequence[str],
                *, refit_label: str | None = None, n_splits: int = 3,
                random_state: int = 42, progress: bool = False) -> GridSearchCV:
    """``GridSearchCV`` over e.g. ``cannon__scatter_grid`` and ``cannon__regularization`` of a
    :class:`CannonRegressor` (or ``cannonregressor__cannon__...`` of a Pipeline ending in one),
    selecting the smallest robust scatter of ``refit_label`` (default: the first label).

    Parameters
    ----------
    estimator : CannonRegressor or Pipeline ending in one
        Unfitted; cloned for each candidate and fold by ``GridSearchCV``.
    X : ndarray, shape (n_stars, 3, n_pixels)
        Normalized spectra (raw ones for a Pipeline that normalizes them).
    y : array_like, shape (n_stars, n_labels)
        Reference labels, in the order of ``label_names``.
    param_grid : dict of str to list
        Parameter names of ``estimator`` (``get_params`` keys) and the values to try.
    label_names : sequence of str of length n_labels
        Names of the label columns of ``y`` (every candidate is scored per label).
    refit_label : str or None, default=None
        The label (one of ``label_names``) whose robust scatter selects the best candidate;
        None: the first label.
    n_splits : int, default=3
        Number of folds.
    random_state : int, default=42
        Seed of the ``KFold`` shuffle.
    progress : bool, default=False
        One line per candidate and fold on stderr as it finishes (scikit-learn's
        ``verbose=2`` lines, with their scores and times).

    Returns
    -------
    GridSearchCV
        Fitted: ``cv_results_`` holds every label's scores, ``best_params_`` the selection,
        ``best_estimator_`` the selected estimator refitted on all stars.
    """
    refit = f"robust_scatter_{refit_label or label_names[0]}"
    search = GridSearchCV(estimator, param_grid, scoring=label_scorers(label_names), refit=refit,
                          cv=KFold(n_splits, shuffle=True, random_state=random_state),
                          verbose=2 if progress else 0)
    with contextlib.redirect_stdout(sys.stderr if progress else sys.stdout):
        return search.fit(X, y)


def held_out_pulls(estimator, X, y, label_names: Sequence[str], *, n_repeats: int = 5,
                   n_splits: int = 2, seed: int = 0) -> pd.DataFrame:
    """Pull widths of held-out stars: per label, the standard deviation of
    (fitted - reference) / sigma with the formal and with the reported (calibrated, when the
    estimator learns a calibration) uncertainties, pooled over ``n_repeats`` shuffled
    ``n_splits``-fold partitions (partition r uses ``random_state=seed + r``, as
    :func:`repeated_kfold`).

    Parameters
    ----------
    estimator : CannonRegressor
        Unfitted; cloned, trained on each fold's training part, and its label fit
        (:meth:`CannonRegressor.infer_labels`) of the held-out part compared with ``y``.
    X : ndarray, shape (n_stars, 3, n_pixels)
        Normalized spectra.
    y : array_like, shape (n_stars, n_labels)
        Reference labels, in the order of ``label_names``.
    label_names : sequence of str of length n_labels
        Names of the label columns of ``y``.
    n_repeats : int, default=5
        Number of partitions.
    n_splits : int, default=2
        Folds per partition.
    seed : int, default=0
        Seed of the first partition's shuffle.

    Returns
    -------
    DataFrame, shape (n_labels, 5)
        One row per label: ``label``, ``formal_pull_sd``, ``pull_sd`` (standard deviations,
        NaN ignored) and ``formal_pull_robust_sd``, ``pull_robust_sd`` (robust, MAD-based).
    """
    from sklearn.base import clone

    from skcannon.stats import robust_scatter

    y = np.asarray(y, float)
    formal, reported = [], []
    for r in range(n_repeats):
        for train, test in KFold(n_splits, shuffle=True, random_state=seed + r).split(X):
            fit = clone(estimator).fit(X[train], y[train]).infer_labels(X[test])
            formal.append((fit.labels - y[test]) / fit.formal_uncertainties)
            reported.append((fit.labels - y[test]) / fit.uncertainties)
    formal, reported = np.vstack(formal), np.vstack(reported)
    return pd.DataFrame({
        "label": list(label_names),
        "formal_pull_sd": np.nanstd(formal, axis=0),
        "pull_sd": np.nanstd(reported, axis=0),
        "formal_pull_robust_sd": robust_scatter(formal, axis=0),
        "pull_robust_sd": robust_scatter(reported, axis=0),
    })
