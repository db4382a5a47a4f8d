"""Posterior sampling time: 4 chains x 1000 draws (1000 tuning steps) of one spectrum (7214 px,
4 labels, the pixel-by-pixel likelihood and its exact quadratic form), model compilation
excluded."""

from __future__ import annotations

import time
import warnings

import numpy as np

from benchmarks.common import SHARED


def run() -> dict:
    from skcannon.apogee.reference import load_reference_model
    from skcannon.data.simulate import simulate_spectra
    from skcannon.inference.mcmc import CannonPosterior

    model = load_reference_model(SHARED / "apogee" / "reference" / "cannon_apokasc_dr12")
    X = simulate_spectra(model, np.array([[4700.0, 2.5, -0.2, 0.1]]), 100,
                         np.random.default_rng(0))
    figures = {}
    for likelihood in ("pixels", "quadratic"):
        sampler = CannonPosterior(model, likelihood=likelihood)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sampler.sample(X[0, 0], X[0, 1], draws=50, tune=50, chains=2, cores=1)  # compile
            start = time.perf_counter()
            post = sampler.sample(X[0, 0], X[0, 1], draws=1000, tune=1000, chains=4, cores=2)
            seconds = time.perf_counter() - start
        key = "mcmc_s" if likelihood == "pixels" else "mcmc_quadratic_s"
        figures[key] = round(seconds, 2)
        figures[f"{key}_divergences"] = post.divergences
    figures["mcmc_problem"] = ("4 chains x 1000 draws + 1000 tune, one spectrum, 7214 px, "
                               "4 labels, NUTS (PyMC), 2 processes")
    return figures


if __name__ == "__main__":
    from benchmarks.common import record

    print(record(run()))
