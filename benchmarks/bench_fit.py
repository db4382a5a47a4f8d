"""Label fitting speed: 1000 spectra (7214 px, 5 labels) with multi-start, against per-star
scipy.optimize.curve_fit(method="trf") and thecannon 0.7.3's infer_labels, in the same run."""

from __future__ import annotations

import contextlib
import io
import time
import warnings

import numpy as np

from benchmarks.common import record
from benchmarks.data import FIVE_LABELS, simulated_giants


def curve_fit_per_star(model, flux, ivar):
    """The baseline: one curve_fit(method="trf") per star, single start at the training mean."""
    from scipy.optimize import curve_fit

    vec = model.vectorizer_
    out = []
    for f, iv in zip(flux, ivar, strict=True):
        good = (iv > 0) & model.pixel_mask_
        theta = model.theta_[good]
        sigma = np.sqrt(1 / iv[good] + model.s2_[good])

        def spectrum(_, *labels, theta=theta):
            return theta @ vec.design_matrix(np.array(labels)[None])[0]

        params, _ = curve_fit(spectrum, np.arange(good.sum()), f[good],
                              p0=np.zeros(vec.n_labels), sigma=sigma, method="trf")
        out.append(params)
    return model.scaling_.unscale(np.array(out))


def run(n_spectra: int = 1000, n_baseline: int = 100) -> dict:
    from skcannon.model import Cannon

    labels, X, _ = simulated_giants(940 + n_spectra, seed=1)
    model = Cannon(label_names=FIVE_LABELS).fit(labels.iloc[:940], X[:940])
    test = X[940:]
    model.infer_labels(test[:10])                       # warm-up
    times = []
    for _ in range(3):
        start = time.perf_counter()
        fit = model.infer_labels(test, n_starts=4)
        times.append(time.perf_counter() - start)
    ours = n_spectra / min(times)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        baseline = curve_fit_per_star(model, test[:n_baseline, 0], test[:n_baseline, 1])
    curve_fit_rate = n_baseline / (time.perf_counter() - start)
    agree = np.median(np.abs(baseline - fit.labels[:n_baseline]) / fit.uncertainties[:n_baseline],
                      axis=0)
    figures = {
        "fit_spectra_per_s": round(ours, 0),
        "fit_problem": f"{n_spectra} spectra x 7214 px x 5 labels, linearized guess + 4 starts "
                       "per star (simulated from the reference model)",
        "fit_curve_fit_spectra_per_s": round(curve_fit_rate, 1),
        "fit_speedup_vs_curve_fit": round(ours / curve_fit_rate, 1),
        "fit_median_difference_vs_curve_fit_in_sigma": round(float(np.max(agree)), 4),
    }
    try:
        from TheCannon import dataset as tc_dataset
        from TheCannon import model as tc_model
    except ImportError:
        return figures
    values = labels[list(FIVE_LABELS)].to_numpy()
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = tc_dataset.Dataset(np.arange(7214), np.arange(940).astype(str), X[:940, 0].copy(),
                                X[:940, 1].copy(), values[:940],
                                np.arange(n_baseline).astype(str), test[:n_baseline, 0].copy(),
                                test[:n_baseline, 1].copy())
        ds.set_label_names(list(FIVE_LABELS))
        theirs = tc_model.CannonModel(2, useErrors=False)
        theirs.train(ds)
        start = time.perf_counter()
        theirs.infer_labels(ds)
        their_rate = n_baseline / (time.perf_counter() - start)
    figures.update({"fit_thecannon_spectra_per_s": round(their_rate, 1),
                    "fit_speedup_vs_thecannon": round(ours / their_rate, 1)})
    return figures


if __name__ == "__main__":
    print(record(run()))
