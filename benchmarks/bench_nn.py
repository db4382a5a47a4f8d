"""Neural networks vs the Cannon on the CV split of bench_cv (1880 simulated giants, halves with
random_state=42): accuracy per label on the same test stars, training time on this CPU, and the
comparison against training-set size (25 %, 50 %, 100 % of the training half)."""

from __future__ import annotations

import time

import numpy as np
from sklearn.model_selection import train_test_split

from benchmarks.bench_cv import CV_SOURCE
from benchmarks.common import RESULTS
from benchmarks.data import simulated_giants


def run() -> dict:
    from skcannon.apogee.reference import REFERENCE_LABELS
    from skcannon.model import Cannon
    from skcannon.nn import fit_nn
    from skcannon.nn.compare import method_table, training_size_study

    names = list(REFERENCE_LABELS)
    labels, X, _ = simulated_giants(1880, seed=42)
    y = labels[names].to_numpy()
    train, test = train_test_split(np.arange(len(X)), test_size=0.5, random_state=42)
    figures = {"nn_data_source": CV_SOURCE}
    cannon = Cannon(label_names=names).fit(y[train], X[train])
    tables = [method_table(y[test], cannon.infer_labels(X[test]).labels, names, "Cannon")]
    for kind in ("mlp", "cnn"):
        start = time.perf_counter()
        net = fit_nn(kind, X[train], y[train], X[test], y[test], seed=42, max_epochs=150)
        figures[f"nn_{kind}_train_s"] = round(time.perf_counter() - start, 1)
        tables.append(method_table(y[test], net.predict(X[test]), names, f"NN ({kind})"))
    best = min(tables[1:], key=lambda t: t.robust_scatter.iloc[0])   # by Teff
    figures["nn_best_architecture"] = best.method.iloc[0]
    for table in tables:
        tag = {"Cannon": "cannon", "NN (mlp)": "nn_mlp", "NN (cnn)": "nn_cnn"}[table.method[0]]
        for row in table.itertuples():
            figures[f"{tag}_scatter_{row.label}"] = round(float(row.scatter), 5)
            figures[f"{tag}_mae_{row.label}"] = round(float(row.median_abs_error), 5)
            figures[f"{tag}_bias_{row.label}"] = round(float(row.bias), 5)
    for row in best.itertuples():
        figures[f"nn_scatter_{row.label}"] = round(float(row.scatter), 5)
    sizes = training_size_study(X[train], y[train], X[test], y[test], names, [0.25, 0.5],
                                best.method.iloc[0][4:7], 42, {"max_epochs": 150})
    for row in sizes.itertuples():
        tag = "cannon" if row.method == "Cannon" else "nn"
        figures[f"size_{row.n_train}_{tag}_robust_scatter_{row.label}"] = round(
            float(row.robust_scatter), 5)
    return figures


if __name__ == "__main__":
    from benchmarks.common import record

    print(record(run()), RESULTS)
