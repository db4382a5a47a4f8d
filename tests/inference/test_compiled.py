"""The quadratic posterior's numba kernel: the PyMC model's target up to a constant, exact
gradients, compiled code cached in the user's cache directory and reused by a new process."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

from skcannon.data.simulate import simulate_spectra  # noqa: E402
from skcannon.inference.compiled import (  # noqa: E402
    cache_directory,
    constrained,
    kernel_arrays,
    quadratic_logp_and_grad,
)
from skcannon.inference.posterior import LabelPriors, LogPosterior  # noqa: E402


def _problem(model, prior):
    X = simulate_spectra(model, np.array([[4700.0, 2.4, -0.2, 0.1]]), 100,
                         np.random.default_rng(0))
    priors = LabelPriors.of(model.state_, prior)
    problem = LogPosterior(model.state_, X[0, 0], X[0, 1], prior=priors, likelihood="quadratic")
    arrays = {**kernel_arrays(model.state_, priors),
              **{k: np.asarray(v, dtype=float) for k, v in problem.data.items()}}
    return problem, priors, arrays


@pytest.mark.parametrize("prior", ["uniform", "normal"])
def test_kernel_is_the_log_posterior_of_the_unconstrained_labels(reference_model, prior):
    """logp(x) = LogPosterior.log_prob(labels(x)) + log|d labels / dx| + constant, and the
    gradient matches central differences."""
    problem, priors, arrays = _problem(reference_model, prior)
    x0 = priors.unconstrained(np.array([4700.0, 2.4, -0.2, 0.1]))
    differences = []
    for step in (np.zeros(4), [0.1, -0.05, 0.02, 0.03], [-0.2, 0.1, 0.05, -0.1]):
        x = x0 + np.asarray(step) * (1 if prior == "uniform" else priors.sigma / 50)
        labels = constrained(x, arrays)
        reference = problem.log_prob(labels)
        if prior == "uniform":
            u = (labels - priors.bounds[0]) / (priors.bounds[1] - priors.bounds[0])
            reference += np.sum(np.log(u * (1 - u)))
        differences.append(quadratic_logp_and_grad(x, arrays)[0] - reference)
    assert np.ptp(differences) < 1e-6
    logp, grad = quadratic_logp_and_grad(x0, arrays)
    eps = 1e-6 * (1 if prior == "uniform" else priors.sigma)
    numeric = [(quadratic_logp_and_grad(x0 + e, arrays)[0]
                - quadratic_logp_and_grad(x0 - e, arrays)[0]) / (2 * e[i])
               for i, e in enumerate(np.diag(np.broadcast_to(eps, 4)))]
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-3)


def test_compiled_code_is_cached_on_disk_and_reused(tmp_path):
    """A first process compiles the kernel into $SKCANNON_CACHE_DIR; a second one loads it
    from there (numba reports a cache hit) instead of compiling again."""
    script = ("import numpy as np\n"
              "from skcannon.inference import compiled\n"
              "f = compiled._compiled()\n"
              "z, i = np.zeros(1), np.zeros((1, 1), dtype=np.int64)\n"
              "f(z, np.eye(1), z, 0.0, i, z, np.ones(1), z, np.ones(1), z, np.ones(1), True,"
              " np.empty(1))\n"
              "print(sum(f.stats.cache_hits.values()), sum(f.stats.cache_misses.values()))\n")
    env = {**os.environ, "SKCANNON_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join(sys.path)}
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           env=env, check=True).stdout.split() for _ in range(2)]
    assert runs[0] == ["0", "1"] and runs[1] == ["1", "0"]
    assert any((tmp_path / "cache").rglob("*.nbi"))


def test_cache_directory_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SKCANNON_CACHE_DIR", str(tmp_path / "x"))
    assert cache_directory() == tmp_path / "x"
    monkeypatch.delenv("SKCANNON_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_directory() == tmp_path / "xdg" / "skcannon" / "compiled"


def test_nutpie_quadratic_posterior_needs_neither_pymc_nor_a_compilation(reference_model,
                                                                          tmp_path):
    """nutpie on the quadratic likelihood (the default) samples the cached kernel: PyMC and
    PyTensor are never imported, and with the cache warm nothing is compiled."""
    pytest.importorskip("nutpie")
    model = tmp_path / "ref.h5"
    reference_model.save(model)
    code = (
        "import sys, numpy as np\n"
        "from skcannon.model import Cannon\n"
        "from skcannon.inference import compiled\n"
        "from skcannon.inference.mcmc import CannonPosterior\n"
        f"model = Cannon.load({str(model)!r})\n"
        "flux = model.predict([[4650.0, 2.4, -0.3, 0.1]])[0]\n"
        "post = CannonPosterior(model, sampler='nutpie').sample(flux, np.full_like(flux, 1e4),"
        " draws=200, tune=200, chains=2)\n"
        "misses = sum(sum(f.stats.cache_misses.values()) for f in (compiled._COMPILED,"
        " compiled._HEADER))\n"
        "print(sorted(m for m in ('pymc', 'pytensor') if m in sys.modules), misses,"
        " round(float(post.summary.loc['TEFF', 'mean'])))\n")
    env = {**os.environ, "SKCANNON_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join(sys.path)}
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, check=True).stdout.split("]") for _ in range(2)]
    assert runs[0][0] == runs[1][0] == "["
    assert runs[0][1].split()[0] == "2" and runs[1][1].split()[0] == "0"   # compiled, cached
    assert abs(int(runs[1][1].split()[1]) - 4650) < 30
