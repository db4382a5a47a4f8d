"""Label fitting speed: 1000 spectra (7214 px, 5 labels) with multi-start, against per-star
scipy.optimize.curve_fit(method="trf") and thecannon 0.7.3's infer_labels, in the same run."""

from __future__ import annotations

import contextlib
import io
import time
import warnings

import numpy as np

from benchmarks.common import cpu_load, options, record
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


def _rate_ours(model, test, repeats: int = 3) -> tuple[float, object]:
    """Spectra per second of ``infer_labels`` with the defaults a user gets (best of
    ``repeats``), and the last fit."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fit = model.infer_labels(test, n_starts=4)
        times.append(time.perf_counter() - start)
    return len(test) / min(times), fit


def _thecannon(labels, X, test, n_baseline: int):
    """thecannon's trained model and dataset of ``n_baseline`` test spectra (None when it is
    not installed)."""
    try:
        from TheCannon import dataset as tc_dataset
        from TheCannon import model as tc_model
    except ImportError:
        return None
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
    return theirs, ds


def _rate_theirs(theirs, ds, n_baseline: int) -> float:
    """Spectra per second of thecannon's infer_labels."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        theirs.infer_labels(ds)
        return n_baseline / (time.perf_counter() - start)


def run(n_spectra: int = 1000, n_baseline: int = 100, loaded: bool = True) -> dict:
    """Quiet figures, then (``loaded``) skcannon and thecannon again beside a CPU-bound load of
    one process per usable CPU."""
    from skcannon.model import Cannon

    labels, X, _ = simulated_giants(940 + n_spectra, seed=1)
    model = Cannon(label_names=FIVE_LABELS).fit(labels.iloc[:940], X[:940])
    test = X[940:]
    model.infer_labels(test[:10])                       # warm-up
    ours, fit = _rate_ours(model, test)
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
        "fit_options": options(model) + "; infer_labels(method='lm', n_starts=4); thecannon: "
                       "CannonModel(2, useErrors=False).infer_labels",
        "fit_curve_fit_spectra_per_s": round(curve_fit_rate, 1),
        "fit_speedup_vs_curve_fit": round(ours / curve_fit_rate, 1),
        "fit_median_difference_vs_curve_fit_in_sigma": round(float(np.max(agree)), 4),
    }
    thecannon = _thecannon(labels, X, test, n_baseline)
    if thecannon is None:
        return figures
    their_rate = _rate_theirs(*thecannon, n_baseline)
    figures.update({"fit_thecannon_spectra_per_s": round(their_rate, 1),
                    "fit_speedup_vs_thecannon": round(ours / their_rate, 1)})
    if loaded:
        with cpu_load() as load:
            ours_loaded, _ = _rate_ours(model, test)
            theirs_loaded = _rate_theirs(*thecannon, n_baseline)
        figures.update({"fit_loaded_spectra_per_s": round(ours_loaded, 0),
                        "fit_thecannon_loaded_spectra_per_s": round(theirs_loaded, 1),
                        "fit_speedup_vs_thecannon_loaded": round(ours_loaded / theirs_loaded, 1),
                        "fit_load": f"{load.n} busy processes (one per usable CPU)"})
    return figures

if __name__ == "__main__":
    print(record(run()))
