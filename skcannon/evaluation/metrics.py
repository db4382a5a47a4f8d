"""Accuracy of inferred labels: bias, scatter, robust scatter and pulls per label.

Every function takes ``y_true, y_pred`` of shape (n_stars, n_labels) and a label index, so
``make_scorer`` turns it into a scorer for ``cross_validate`` / ``GridSearchCV``
(:func:`label_scorers` builds the whole set).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from skcannon.stats import robust_scatter


def _difference(y_true, y_pred, label: int) -> np.ndarray:
    d = np.asarray(y_pred, float)[:, label] - np.asarray(y_true, float)[:, label]
    return d[np.isfinite(d)]


def label_bias(y_true, y_pred, *, label: int = 0) -> float:
    """Mean of (inferred - reference) for one label, over the stars where it is finite.

    Parameters
    ----------
    y_true : array_like of shape (n_stars, n_labels)
        Reference labels.
    y_pred : array_like of shape (n_stars, n_labels)
        Inferred labels.
    label : int, default=0
        Column of the label to score.

    Returns
    -------
    float
        The bias, in the label's units.
    """
    return float(np.mean(_difference(y_true, y_pred, label)))


def label_scatter(y_true, y_pred, *, label: int = 0) -> float:
    """Standard deviation of (inferred - reference) for one label, over the stars where it is
    finite.

    Parameters
    ----------
    y_true : array_like of shape (n_stars, n_labels)
        Reference labels.
    y_pred : array_like of shape (n_stars, n_labels)
        Inferred labels.
    label : int, default=0
        Column of the label to score.

    Returns
    -------
    float
        The scatter, in the label's units.
    """
    return float(np.std(_difference(y_true, y_pred, label)))


def label_robust_scatter(y_true, y_pred, *, label: int = 0) -> float:
    """1.4826 x median absolute deviation of (inferred - reference) for one label, over the
    stars where it is finite (:func:`skcannon.stats.robust_scatter`).

    Parameters
    ----------
    y_true : array_like of shape (n_stars, n_labels)
        Reference labels.
    y_pred : array_like of shape (n_stars, n_labels)
        Inferred labels.
    label : int, default=0
        Column of the label to score.

    Returns
    -------
    float
        The robust scatter, in the label's units.
    """
    return robust_scatter(_difference(y_true, y_pred, label))


def label_scorers(label_names: Sequence[str]) -> dict:
    """Scorers for ``cross_validate``: ``bias_<LABEL>`` (signed) and ``scatter_<LABEL>`` /
    ``robust_scatter_<LABEL>`` (negated, since scikit-learn maximizes scores).

    Parameters
    ----------
    label_names : sequence of str of length n_labels
        Names of the label columns of ``y``, in order.

    Returns
    -------
    dict of str to callable
        Three scorers per label (``make_scorer`` objects), keyed by scorer name.
    """
    from sklearn.metrics import make_scorer

    scorers = {}
    for i, name in enumerate(label_names):
        scorers[f"bias_{name}"] = make_scorer(label_bias, label=i)
        scorers[f"scatter_{name}"] = make_scorer(label_scatter, label=i, greater_is_better=False)
        scorers[f"robust_scatter_{name}"] = make_scorer(label_robust_scatter, label=i,
                                                        greater_is_better=False)
    return scorers


def accuracy_table(y_true, y_pred, label_names: Sequence[str]) -> pd.DataFrame:
    """Bias, scatter and robust scatter per label (rows) for one comparison.

    Parameters
    ----------
    y_true : array_like of shape (n_stars, n_labels)
        Reference labels.
    y_pred : array_like of shape (n_stars, n_labels)
        Inferred labels.
    label_names : sequence of str of length n_labels
        Names of the label columns, in order.

    Returns
    -------
    DataFrame
        One row per label, columns ``label``, ``n`` (stars with a finite difference),
        ``bias``, ``scatter`` and ``robust_scatter``.
    """
    rows = []
    for i, name in enumerate(label_names):
        rows.append({"label": name, "n": int(_difference(y_true, y_pred, i).size),
                     "bias": label_bias(y_true, y_pred, label=i),
                     "scatter": label_scatter(y_true, y_pred, label=i),
                     "robust_scatter": label_robust_scatter(y_true, y_pred, label=i)})
    return pd.DataFrame(rows)


def accuracy_by_snr(y_true, y_pred, snr, label_names: Sequence[str],
                    *, edges: Sequence[float] = (0, 75, 100, 150, 250, np.inf)) -> pd.DataFrame:
    """Bias and scatter per label in SNR bins (:func:`accuracy_table` of the stars in each
    bin; bins with fewer than 3 stars are left out).

    Parameters
    ----------
    y_true : array_like of shape (n_stars, n_labels)
        Reference labels.
    y_pred : array_like of shape (n_stars, n_labels)
        Inferred labels.
    snr : array_like of shape (n_stars,)
        Signal-to-noise ratio of each star.
    label_names : sequence of str of length n_labels
        Names of the label columns, in order.
    edges : sequence of float, default=(0, 75, 100, 150, 250, inf)
        Bin edges; bin k holds ``edges[k] <= snr < edges[k + 1]``.

    Returns
    -------
    DataFrame
        The :func:`accuracy_table` rows of every bin, with a first column ``snr_range``
        (e.g. ``"75-100"``); empty when no bin has 3 stars.
    """
    snr = np.asarray(snr, float)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (snr >= lo) & (snr < hi)
        if inside.sum() < 3:
            continue
        table = accuracy_table(np.asarray(y_true)[inside], np.asarray(y_pred)[inside],
                               label_names)
        table.insert(0, "snr_range", f"{lo:g}-{hi:g}")
        rows.append(table)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def pulls(y_true, y_pred, sigma_pred, *, sigma_true=None) -> np.ndarray:
    """(inferred - reference) / sqrt(sigma_pred^2 + sigma_ref^2) per star and label.

    Honest uncertainties give a standard deviation near 1.

    Parameters
    ----------
    y_true : array_like of shape (n_stars, n_labels)
        Reference labels.
    y_pred : array_like of shape (n_stars, n_labels)
        Inferred labels.
    sigma_pred : array_like of shape (n_stars, n_labels)
        Uncertainties of the inferred labels.
    sigma_true : array_like of shape (n_stars, n_labels), default=None
        Uncertainties of the reference labels; None leaves them out.

    Returns
    -------
    ndarray of shape (n_stars, n_labels)
        The pulls.
    """
    variance = np.asarray(sigma_pred, float) ** 2
    if sigma_true is not None:
        variance = variance + np.asarray(sigma_true, float) ** 2
    return (np.asarray(y_pred, float) - np.asarray(y_true, float)) / np.sqrt(variance)
