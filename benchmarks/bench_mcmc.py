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


def _cli_seconds(directory: Path, command: str) -> float:
    """Wall time of ``skcannon <command>`` ("posterior" or "fit") on the one spectrum in
    ``directory`` in a fresh process (imports, model file, compilation, sampling, outputs:
    what a user waits for)."""
    extra = ["-o", str(directory / ("fit.csv" if command == "fit" else "posterior"))]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "skcannon.cli", command, str(directory / "one.h5"),
                    "--model", str(directory / "model.h5"), *extra],
                   check=True, capture_output=True)
    return time.perf_counter() - start


def cli_ratios(model, X, repeats: int = 2) -> dict:
    """``skcannon posterior`` over ``skcannon fit`` on the same spectrum, fresh processes,
    alternating, best of ``repeats``: the first posterior of a round is "fresh" (whatever a
    previous round left in on-disk caches aside), the one right after it "warm"."""
    from skcannon.data.dataset import SpectralDataset

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model.save(tmp / "model.h5")
        SpectralDataset.from_spectra(model.wavelength_, X[:1], _table(1)).save(tmp / "one.h5")
        fit, fresh, warm = [], [], []
        for _ in range(repeats):
            fit.append(_cli_seconds(tmp, "fit"))
            fresh.append(_cli_seconds(tmp, "posterior"))
            warm.append(_cli_seconds(tmp, "posterior"))
    return {"mcmc_cli_wall_s": round(min(fresh), 2), "mcmc_cli_warm_wall_s": round(min(warm), 2),
            "mcmc_cli_fit_wall_s": round(min(fit), 2),
            "mcmc_cli_over_fit_ratio": round(min(fresh) / min(fit), 2),
            "mcmc_cli_over_fit_ratio_warm": round(min(warm) / min(fit), 2),
            "mcmc_cli_options": "skcannon posterior (defaults: quadratic likelihood, uniform "
                                "priors, 4 chains x 1000 draws + 1000 tune, default sampler) vs "
                                "skcannon fit (defaults), one simulated spectrum"}


def ess_per_second(model, X, sampler: str) -> float:
    """The smallest bulk effective sample size over the labels per second of sampling (the
    model already compiled), with the default (quadratic) likelihood."""
    from skcannon.inference.mcmc import CannonPosterior

    posterior = CannonPosterior(model, sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        posterior.sample(X[0, 0], X[0, 1])                     # compiles, if it does
        start = time.perf_counter()
        post = posterior.sample(X[1, 0], X[1, 1], seed=1)
        seconds = time.perf_counter() - start
    return float(post.summary["ess_bulk"].min()) / seconds


def _table(n: int):
    import pandas as pd

    return pd.DataFrame({"APOGEE_ID": [f"sim_{i}" for i in range(n)]})


def run(quick: bool = False) -> dict:
    """All figures; ``quick``: the CLI ratios and effective samples per second only."""
    from skcannon.apogee.reference import load_reference_model
    from skcannon.data.simulate import simulate_spectra
    from skcannon.inference.mcmc import (
        CannonPosterior,
        default_sampler,
        nutpie_installed,
        sample_many,
    )

    model = load_reference_model(SHARED / "apogee" / "reference" / "cannon_apokasc_dr12")
    rng = np.random.default_rng(0)
    truth = np.column_stack([rng.uniform(4300, 5000, N_BATCH), rng.uniform(1.5, 3.0, N_BATCH),
                             rng.uniform(-0.6, 0.1, N_BATCH), rng.uniform(0.0, 0.2, N_BATCH)])
    X = simulate_spectra(model, truth, np.full(N_BATCH, 100.0), rng)
    figures = {"mcmc_problem": "4 chains x 1000 draws + 1000 tune, one spectrum, 7214 px, "
                               "4 labels, NUTS; 2 cores"}
    figures.update(cli_ratios(model, X))
    sampler = default_sampler()
    ours, emcee = ess_per_second(model, X, sampler), ess_per_second(model, X, "emcee")
    figures.update({"mcmc_ess_per_s": round(ours, 0), "mcmc_emcee_ess_per_s": round(emcee, 0),
                    "mcmc_ess_per_s_over_emcee": round(ours / emcee, 2),
                    "mcmc_ess_options": f"{sampler} vs emcee (DE moves, 16 walkers), same "
                                        "quadratic log-posterior, 1000 draws + 1000 tune, "
                                        "compiled model; smallest bulk ESS over 4 labels"})
    if quick:
        return figures
    samplers = ["nutpie", "pymc"] if nutpie_installed() else ["pymc"]
    for sampler in samplers:
        for likelihood in ("quadratic", "pixels"):
            figures.update(_sampler_figures(model, X, sampler, likelihood))
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
