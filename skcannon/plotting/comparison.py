"""Method-comparison figures: accuracy per label and method, and training loss curves."""

from __future__ import annotations

import numpy as np
import pandas as pd

from skcannon.labels import label_axis_name
from skcannon.plotting.common import new_figure


def comparison_figure(table: pd.DataFrame, value: str = "robust_scatter"):
    """Per label, ``value`` of each method: bars, or, with an ``n_train`` column, lines
    against training-set size.

    Parameters
    ----------
    table : DataFrame
        Columns ``label``, ``method``, ``value`` and optionally ``n_train``
        (:func:`skcannon.nn.compare.method_table` rows).
    value : str, default="robust_scatter"
        The column to plot.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per label.
    """
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
    """Training and validation loss per epoch, one line pair per network.

    Parameters
    ----------
    histories : dict of str to (ndarray, ndarray)
        Network name -> (training loss, validation loss) per epoch
        (:func:`skcannon.nn.loss_history`).

    Returns
    -------
    matplotlib.figure.Figure
    """
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
