"""The neural network and the Cannon on the same split: accuracy tables (figures:
:mod:`skcannon.plotting.comparison`).

Both train on the same stars (``train_test_split`` halves, the same ``random_state`` as
``skcannon validate``) and are scored on the same test stars; for smaller training sets the
training half is subsampled with the same seed for both methods.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from skcannon.evaluation.metrics import accuracy_table
from skcannon.model import Cannon


def method_table(reference: np.ndarray, predicted: np.ndarray, names: Sequence[str],
                 method: str) -> pd.DataFrame:
    """Bias, median absolute error, scatter and robust scatter per label for one method."""
    table = accuracy_table(reference, predicted, names)
    table["median_abs_error"] = np.nanmedian(np.abs(predicted - reference), axis=0)
    table.insert(0, "method", method)
    return table


def training_size_study(X_train, y_train, X_test, y_test, names: Sequence[str],
                        fractions: Sequence[float], kind: str, seed: int,
                        nn_options: dict | None = None) -> pd.DataFrame:
    """Both methods trained on the first ``fraction`` of a seeded permutation of the training
    stars, scored on the same test stars."""
    from skcannon.nn.estimator import fit_nn

    order = np.random.default_rng(seed).permutation(len(X_train))
    rows = []
    for fraction in fractions:
        keep = order[: max(int(round(fraction * len(order))), 30)]
        cannon = Cannon(label_names=tuple(names)).fit(y_train[keep], X_train[keep])
        rows.append(method_table(y_test, cannon.infer_labels(X_test).labels, names, "Cannon")
                    .assign(n_train=len(keep)))
        net = fit_nn(kind, X_train[keep], y_train[keep], X_test, y_test, seed=seed,
                     **(nn_options or {}))
        rows.append(method_table(y_test, net.predict(X_test), names, f"NN ({kind})")
                    .assign(n_train=len(keep)))
    return pd.concat(rows, ignore_index=True)
