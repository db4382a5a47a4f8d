"""The neural network and the Cannon on the same split: accuracy tables (figures:
:mod:`skcannon.plotting.comparison`).

Both train on the same stars (``train_test_split`` halves, the same ``random_state`` as
``skcannon validate``) and are scored on the same test stars; for smaller training sets the
training half is subsampled with the same seed for both methods.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from skcannon.evaluation.metrics import accuracy_table
from skcannon.model import Cannon


def method_table(reference: np.ndarray, predicted: np.ndarray, names: Sequence[str],
                 method: str) -> pd.DataFrame:
    """Bias, median absolute error, scatter and robust scatter per label for one method.

    Parameters
    ----------
    reference : ndarray of shape (n_stars, n_labels)
        Reference labels.
    predicted : ndarray of shape (n_stars, n_labels)
        The method's labels.
    names : sequence of str of length n_labels
    method : str
        Name of the method, the table's first column.

    Returns
    -------
    DataFrame
        :func:`skcannon.evaluation.accuracy_table` with a ``method`` column first and a
        ``median_abs_error`` column.
    """
    table = accuracy_table(reference, predicted, names)
    table["median_abs_error"] = np.nanmedian(np.abs(predicted - reference), axis=0)
    table.insert(0, "method", method)
    return table


def training_size_study(X_train, y_train, X_test, y_test, names: Sequence[str],
                        fractions: Sequence[float], kind: str, seed: int,
                        nn_options: dict | None = None,
                        report: Callable[[str], object] | None = None) -> pd.DataFrame:
    """Both methods trained on the first ``fraction`` of a seeded permutation of the training
    stars (at least 30 stars), scored on the same test stars.

    Parameters
    ----------
    X_train : ndarray of shape (n_train, 3, n_pixels)
    y_train : ndarray of shape (n_train, n_labels)
    X_test : ndarray of shape (n_test, 3, n_pixels)
        Also the network's validation set.
    y_test : ndarray of shape (n_test, n_labels)
    names : sequence of str of length n_labels
    fractions : sequence of float
        Fractions of the training stars, each in (0, 1].
    kind : {"mlp", "cnn"}
        Network architecture.
    seed : int
        Seeds the permutation and the network.
    nn_options : dict, default=None
        Further keyword arguments of :func:`skcannon.nn.fit_nn`.
    report : callable, default=None
        Called with what is about to be done before each of the ``2 * len(fractions)``
        trainings (e.g. to write a progress line); given, the network also shows its epochs
        (``fit_nn(progress=True)``). None: quiet.

    Returns
    -------
    DataFrame
        :func:`method_table` rows of the Cannon and the network per fraction, with a column
        ``n_train``.
    """
    from skcannon.nn.estimator import fit_nn

    order = np.random.default_rng(seed).permutation(len(X_train))
    rows, say = [], report or (lambda doing: None)
    for fraction in fractions:
        keep = order[: max(int(round(fraction * len(order))), 30)]
        size = f"fraction {fraction:g} ({len(keep)} training stars)"
        say(f"{size}: training the Cannon, fitting {len(X_test)} test stars")
        cannon = Cannon(label_names=tuple(names)).fit(y_train[keep], X_train[keep])
        rows.append(method_table(y_test, cannon.infer_labels(X_test).labels, names, "Cannon")
                    .assign(n_train=len(keep)))
        say(f"{size}: training NN ({kind})")
        net = fit_nn(kind, X_train[keep], y_train[keep], X_test, y_test, seed=seed,
                     **{"progress": report is not None, **(nn_options or {})})
        rows.append(method_table(y_test, net.predict(X_test), names, f"NN ({kind})")
                    .assign(n_train=len(keep)))
    return pd.concat(rows, ignore_index=True)
