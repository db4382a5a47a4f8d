"""The neural network and the Cannon on the same split: accuracy tables and their figures.

Both train on the same stars (``train_test_split`` halves, the same ``random_state`` as
``skcannon validate``) and are scored on the same test stars; for smaller training sets the
training half is subsampled with the same seed for both methods.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from skcannon.metrics import accuracy_table


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
    from skcannon.model import Cannon
    from skcannon.nn import fit_nn

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


def comparison_figure(table: pd.DataFrame, value: str = "robust_scatter"):
    """Per label, ``value`` of each method; with an ``n_train`` column, against training-set
    size."""
    from skcannon.plotting.common import new_figure
    from skcannon.plotting.validation import label_axis_name

    labels = list(dict.fromkeys(table.label))
    figure, axes = new_figure(1, len(labels), width=2.6 * len(labels), height=2.8)
    for ax, label in zip(axes[0], labels, strict=True):
        part = table[table.label == label]
        if "n_train" in part:
            for method, rows in part.groupby("method"):
                ax.plot(rows.n_train, rows[value], "o-", label=method)
            ax.set_xlabel("training stars")
            ax.set_xscale("log")
        else:
            ax.bar(part.method, part[value], color=["tab:blue", "tab:orange", "tab:green"]
                   [: len(part)])
            ax.tick_params(axis="x", labelsize=7, rotation=20)
        ax.set_title(label_axis_name(label), fontsize=8)
    axes[0, 0].set_ylabel(value.replace("_", " "))
    if "n_train" in table:
        axes[0, 0].legend(fontsize=7)
    return figure


def loss_figure(histories: dict):
    """Training and validation loss per epoch, one line pair per network."""
    from skcannon.plotting.common import new_figure

    figure, axes = new_figure(1, 1, width=6, height=3.5)
    ax = axes[0, 0]
    for name, (train, valid) in histories.items():
        line, = ax.plot(np.arange(1, len(train) + 1), train, label=f"{name} training")
        ax.plot(np.arange(1, len(valid) + 1), valid, ls="--", color=line.get_color(),
                label=f"{name} validation")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE of standardized labels")
    ax.legend(fontsize=7)
    return figure
