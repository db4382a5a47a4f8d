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


def test_cache_directory_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SKCANNON_CACHE_DIR", str(tmp_path / "x"))
    assert cache_directory() == tmp_path / "x"
    monkeypatch.delenv("SKCANNON_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_directory() == tmp_path / "xdg" / "skcannon" / "compiled"


@pytest.mark.slow
def test_nutpie_quadratic_posterior_needs_neither_pymc_nor_a_compilation(reference_model,
                                                                          tmp_path):
    """nutpie on the quadratic likelihood (the default) samples the cached kernel: PyMC and
    PyTensor are never imported; a first process compiles into $SKCANNON_CACHE_DIR, a second
    one loads from there (numba reports no cache miss) instead of compiling again."""
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
        " draws=100, tune=100, chains=2)\n"
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
    assert any((tmp_path / "cache").rglob("*.nbi"))


def test_an_unwritable_cache_directory_still_samples(reference_model, tmp_path):
    """Where the cache directory cannot be created, the kernel is compiled without a cache
    (the posterior still works) instead of failing."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = ("import numpy as np\n"
            "from skcannon.inference import compiled\n"
            "f = compiled._compiled()\n"
            "print(f._cache.__class__.__name__)\n")
    env = {**os.environ, "SKCANNON_CACHE_DIR": str(blocker / "cache"),
           "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          check=True)
    assert done.stdout.strip() == "NullCache"


@pytest.mark.slow
def test_a_nutpie_without_the_private_model_api_falls_back_to_the_pymc_path(reference_model,
                                                                             monkeypatch):
    """The cached kernel reaches nutpie through its private ``_lib``; where that API differs
    (another nutpie release), sampling warns and uses the PyMC model compiled by nutpie."""
    pytest.importorskip("nutpie")
    pytest.importorskip("pymc")
    from skcannon.inference import compiled
    from skcannon.inference.mcmc import CannonPosterior

    def changed_api(*args, **kwargs):
        raise AttributeError("module 'nutpie._lib' has no attribute 'PyVariable'")

    monkeypatch.setattr(compiled, "nutpie_model", changed_api)
    flux = reference_model.predict([[4650.0, 2.4, -0.3, 0.1]])[0]
    with pytest.warns(RuntimeWarning, match="cached-kernel path is not available"):
        post = CannonPosterior(reference_model, sampler="nutpie").sample(
            flux, np.full_like(flux, 1e4), draws=100, tune=100, chains=2)
    assert abs(float(post.summary.loc["TEFF", "mean"]) - 4650) < 30
