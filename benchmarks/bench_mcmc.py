"""Posterior sampling time: 4 chains x 1000 draws (+1000 tuning) of one spectrum (7214 px,
4 labels), for each NUTS back end (nutpie, PyMC's own) and likelihood form (pixel by pixel, and
its exact quadratic form): with model compilation (a fresh model's first call) and without (the
same compiled model, another spectrum); the whole ``skcannon posterior`` command in a fresh
process; and many stars with one compiled model (stars per minute)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks.common import SHARED

#: Stars in the batch measurement.
N_BATCH = 20


def _sampler_figures(model, X, sampler: str, likelihood: str) -> dict:
    from skcannon.inference.mcmc import CannonPosterior

    start = time.perf_counter()
    nuts = CannonPosterior(model, likelihood=likelihood, sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nuts.sample(X[0, 0], X[0, 1], draws=1000, tune=1000, chains=4, cores=2)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        post = nuts.sample(X[1, 0], X[1, 1], draws=1000, tune=1000, chains=4, cores=2)
        warm = time.perf_counter() - start
    key = f"mcmc_{sampler}_{likelihood}"
    return {f"{key}_with_compile_s": round(cold, 2), f"{key}_s": round(warm, 2),
            f"{key}_divergences": post.divergences}


def _cli_seconds(model, X) -> float:
    """Wall time of ``skcannon posterior`` on one spectrum in a fresh process (imports,
    model file, compilation and sampling: what a user waits for)."""
    from skcannon.data.dataset import SpectralDataset

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model.save(tmp / "model.h5")
        SpectralDataset.from_spectra(model.wavelength_, X[:1], _table(1)).save(tmp / "one.h5")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "skcannon.cli", "posterior", str(tmp / "one.h5"),
                        "--model", str(tmp / "model.h5"), "-o", str(tmp / "out")],
                       check=True, capture_output=True)
        return time.perf_counter() - start


def _table(n: int):
    import pandas as pd

    return pd.DataFrame({"APOGEE_ID": [f"sim_{i}" for i in range(n)]})


def run() -> dict:
    from skcannon.apogee.reference import load_reference_model
    from skcannon.data.simulate import simulate_spectra
    from skcannon.inference.mcmc import CannonPosterior, nutpie_installed, sample_many

    model = load_reference_model(SHARED / "apogee" / "reference" / "cannon_apokasc_dr12")
    rng = np.random.default_rng(0)
    truth = np.column_stack([rng.uniform(4300, 5000, N_BATCH), rng.uniform(1.5, 3.0, N_BATCH),
                             rng.uniform(-0.6, 0.1, N_BATCH), rng.uniform(0.0, 0.2, N_BATCH)])
    X = simulate_spectra(model, truth, np.full(N_BATCH, 100.0), rng)
    figures = {"mcmc_problem": "4 chains x 1000 draws + 1000 tune, one spectrum, 7214 px, "
                               "4 labels, NUTS; 2 cores"}
    samplers = ["nutpie", "pymc"] if nutpie_installed() else ["pymc"]
    for sampler in samplers:
        for likelihood in ("quadratic", "pixels"):
            figures.update(_sampler_figures(model, X, sampler, likelihood))
    figures["mcmc_cli_wall_s"] = round(_cli_seconds(model, X), 2)
    nuts = CannonPosterior(model, likelihood="quadratic")
    start = time.perf_counter()
    table = sample_many(nuts, X[:, 0], X[:, 1], draws=1000, tune=1000, chains=4)
    seconds = time.perf_counter() - start
    figures["mcmc_batch_sampler"] = nuts.sampler
    figures["mcmc_batch_stars_per_minute"] = round(60 * N_BATCH / seconds, 1)
    figures["mcmc_batch_converged_fraction"] = round(float(table.CONVERGED.mean()), 3)
    return figures


if __name__ == "__main__":
    from benchmarks.common import record

    print(record(run()))
