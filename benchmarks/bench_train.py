"""Training time: skcannon vs the PyPI package thecannon (0.7.3) on identical inputs.

Problem: 940 stars x 7214 pixels x 5 labels (the seed split of ~1880 giants), spectra simulated
from the reference model at real DR12 labels. thecannon is a benchmark-only dependency
(``pip install -e ".[bench]"``; ``make benchmarks`` installs it).
"""

from __future__ import annotations

import contextlib
import io
import time
import tracemalloc

import numpy as np

from benchmarks.common import cpu_load, options, record
from benchmarks.data import FIVE_LABELS, simulated_giants


def profile_lnl(design, flux, ivar, s2):
    """Exact profile log-likelihood of one pixel at s2 (for comparing the two answers)."""
    good = ivar > 0
    x, f, iv = design[good], flux[good], ivar[good]
    w = iv / (1 + iv * s2)
    theta = np.linalg.solve(x.T @ (w[:, None] * x), x.T @ (w * f))
    r = f - x @ theta
    return -0.5 * np.sum(w * r * r - np.log(w))


def _time_ours(labels, X, repeats: int) -> tuple[float, object]:
    """Best of ``repeats`` trainings with the defaults a user gets, and the last model."""
    from skcannon.model import Cannon

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model = Cannon(label_names=FIVE_LABELS).fit(labels, X)
        times.append(time.perf_counter() - start)
    return min(times), model


def _time_theirs(labels, X):
    """thecannon's training time and model (None, None when it is not installed)."""
    try:
        from TheCannon import dataset as tc_dataset
        from TheCannon import model as tc_model
    except ImportError:
        print("TheCannon is not installed (pip install -e '.[bench]'): no ratio measured")
        return None, None
    flux, ivar = X[:, 0].copy(), X[:, 1].copy()
    values = labels[list(FIVE_LABELS)].to_numpy()
    with contextlib.redirect_stdout(io.StringIO()):
        ds = tc_dataset.Dataset(np.arange(flux.shape[1]), np.arange(len(X)).astype(str), flux,
                                ivar, values, np.array(["t"]), flux[:1], ivar[:1])
        theirs_model = tc_model.CannonModel(2, useErrors=False)
        start = time.perf_counter()
        theirs_model.train(ds)
        return time.perf_counter() - start, theirs_model


def run(n_stars: int = 940, repeats: int = 3, loaded: bool = True) -> dict:
    """Quiet figures, then (``loaded``) the same beside a CPU-bound load of one process per
    usable CPU (:class:`benchmarks.common.cpu_load`)."""
    from skcannon.model import DEFAULT_SCATTER_GRID, Cannon

    labels, X, _ = simulated_giants(2 * n_stars, seed=0)
    labels, X = labels.iloc[:n_stars], X[:n_stars]
    ours, model = _time_ours(labels, X, repeats)
    tracemalloc.start()  # NumPy reports its array allocations to tracemalloc
    Cannon(label_names=FIVE_LABELS).fit(labels, X)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    figures = {"train_s": round(ours, 3), "train_problem": f"{n_stars} stars x "
               f"{X.shape[2]} pixels x {len(FIVE_LABELS)} labels (simulated from the reference "
               "model at real DR12 labels)",
               "train_options": options(model) + "; thecannon: CannonModel(2, useErrors=False)",
               "train_peak_memory_mb": round(peak, 1),
               "train_s2_on_grid_edge": int(np.sum(
                   model.grid_index_ == len(DEFAULT_SCATTER_GRID) - 1))}
    theirs, theirs_model = _time_theirs(labels, X)
    if theirs is None:
        return figures
    figures.update(_accuracy(model, theirs_model, labels, X))
    figures.update({"train_thecannon_s": round(theirs, 2),
                    "train_speedup_vs_thecannon": round(theirs / ours, 1)})
    if loaded:
        with cpu_load() as load:
            ours_loaded, _ = _time_ours(labels, X, repeats)
            theirs_loaded, _ = _time_theirs(labels, X)
        figures.update({"train_loaded_s": round(ours_loaded, 3),
                        "train_thecannon_loaded_s": round(theirs_loaded, 2),
                        "train_speedup_vs_thecannon_loaded": round(theirs_loaded / ours_loaded, 1),
                        "train_load": f"{load.n} busy processes (one per usable CPU)"})
    return figures


def _accuracy(model, theirs_model, labels, X) -> dict:
    """s^2 accuracy: each answer's exact profile likelihood on identical inputs, at sample
    pixels."""
    values = labels[list(FIVE_LABELS)].to_numpy()
    design = model.vectorizer_.design_matrix(model.scaling_.scale(values))
    pixels = np.flatnonzero(model.pixel_mask_)[::50]
    ours_lnl = np.array([profile_lnl(design, X[:, 0, p], X[:, 1, p], model.s2_[p])
                         for p in pixels])
    their_s2 = np.asarray(theirs_model.scatters)[pixels] ** 2
    their_lnl = np.array([profile_lnl(design, X[:, 0, p], X[:, 1, p], s2)
                          for p, s2 in zip(pixels, their_s2, strict=True)])
    return {"train_lnl_gain_vs_thecannon_median": round(float(np.median(ours_lnl - their_lnl)),
                                                        4),
            "train_fraction_pixels_thecannon_s2_worse": round(float(np.mean(
                ours_lnl >= their_lnl - 1e-9)), 3)}

if __name__ == "__main__":
    print(record(run()))
