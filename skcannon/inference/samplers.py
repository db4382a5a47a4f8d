"""Posterior back ends behind one small interface, and their registry.

A back end (a sampler) is a class built once per model and set of priors, then asked for draws
of one spectrum's posterior at a time::

    backend = cls(state, priors, likelihood)       # e.g. compiles a model, once
    idata = backend.draw(problem, draws=..., tune=..., chains=..., seed=..., initial=...,
                         progressbar=..., cores=...)

``problem`` is the :class:`~skcannon.inference.posterior.LogPosterior` of one spectrum: its
``log_prob`` / ``log_prob_and_grad`` (numpy), its ``data`` (what a compiled model swaps in) and
its ``priors``. ``draw`` returns an ``arviz.InferenceData`` whose posterior has one variable per
label (physical units) and whose sample stats have ``diverging``. Registered (:data:`SAMPLERS`):

* ``"nutpie"``: nutpie's NUTS (the default when installed): on the quadratic posterior's
  numba kernel cached on disk (:mod:`skcannon.inference.compiled`), or on the PyMC model
  compiled once per process with numba ("pixels").
* ``"pymc"``: PyMC's own NUTS on the same model.
* ``"emcee"``: emcee's ensemble sampler, driven by ``LogPosterior.log_prob`` alone.

A new back end is one class and one :func:`register_sampler` call; ``CannonPosterior(...,
sampler=name)`` and ``skcannon posterior --sampler`` then offer it. With a radial velocity,
continuum or fixed labels (:mod:`skcannon.inference.posterior_nuisance`) a back end is built as
``cls(state, priors, "pixels", nuisance=setup)`` and ``problem`` is a ``NuisancePosterior``
(its ``names`` the sampled variables, ``best`` the joint optimizer's fit, ``initvals()`` /
``unconstrained()`` the start); the three back ends here take it, and ``CannonPosterior``
passes ``nuisance`` only when such an option is asked.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np

from skcannon.errors import SkcannonError
from skcannon.inference.posterior import LabelPriors
from skcannon.inference.pymc_graph import build_nuisance_model, build_pymc_model

#: emcee: walkers per label (the ensemble needs at least 2 per dimension).
WALKERS_PER_LABEL = 4
#: emcee: the initial ball's radius, in training standard deviations of each label.
INITIAL_BALL = 1e-3
#: emcee with a radial velocity: its scale (km/s) in the initial ball (radius INITIAL_BALL
#: times this: 0.01 km/s around the joint best fit).
RV_BALL = 10.0
#: emcee: the fraction of differential-evolution moves (the rest: DE snooker moves), emcee's
#: advice for correlated, near-Gaussian targets; on a Cannon posterior (4 labels, SNR 120)
#: they gave 6x the effective sample size of the default stretch move.
DE_FRACTION = 0.8


def installed(module: str) -> bool:
    """True when ``module`` can be imported."""
    return importlib.util.find_spec(module) is not None


def nutpie_installed() -> bool:
    """True when the nutpie sampler can be imported."""
    return installed("nutpie")


class SamplerNotInstalledError(SkcannonError, ValueError):
    """A registered sampler's optional dependency is not installed (the command line says so
    in one line)."""


def _require(module: str, sampler: str) -> None:
    """Raise :class:`SamplerNotInstalledError` naming the missing dependency of ``sampler``."""
    if not installed(module):
        raise SamplerNotInstalledError(f"sampler {sampler!r} is not installed "
                                       f"(pip install {module})")


def _no_c_blas_needed() -> None:
    """Tell PyTensor it has no C BLAS to link to, unless the user configured one.

    nutpie compiles the model with numba, whose matrix products call the OpenBLAS that numpy
    and scipy bundle; PyTensor's C backend (the only user of ``blas__ldflags``) never runs. Left
    unset, PyTensor searches the system for a BLAS on first use by a graph rewrite and, on a
    pip install, warns that it "could not link to a BLAS installation" - true, and irrelevant
    here. A user's own setting (``PYTENSOR_FLAGS`` or ``.pytensorrc``) is left alone."""
    import os
    from pathlib import Path

    import pytensor

    configured = ("blas__ldflags" in os.environ.get("PYTENSOR_FLAGS", "")
                  or Path(os.environ.get("PYTENSORRC", Path.home() / ".pytensorrc")).exists())
    if not configured:
        pytensor.config.blas__ldflags = ""


class PyMCSampler:
    """PyMC's NUTS on the posterior's PyMC model (built once; only the data change).

    Parameters
    ----------
    state : CannonState
        A fitted model's learned state.
    priors : LabelPriors
    likelihood : {"pixels", "quadratic"}
    nuisance : NuisanceSetup, optional
        A radial velocity, continuum or fixed labels
        (:mod:`skcannon.inference.posterior_nuisance`): the model of
        :func:`~skcannon.inference.pymc_graph.build_nuisance_model` instead (pixel
        likelihood).
    """

    def __init__(self, state, priors: LabelPriors, likelihood: str, nuisance=None) -> None:
        _require("pymc", "pymc")
        self.state, self.priors, self.likelihood = state, priors, likelihood
        self.nuisance = nuisance
        self._pymc_model = None

    @property
    def pymc_model(self):
        """The PyMC model (:func:`skcannon.inference.pymc_graph.build_pymc_model`; built, and
        PyMC imported, on first use)."""
        if self._pymc_model is None and self.nuisance is not None:
            self._pymc_model = build_nuisance_model(self.nuisance)
        elif self._pymc_model is None:
            self._pymc_model = build_pymc_model(self.state, self.priors, self.likelihood)
        return self._pymc_model

    def set_data(self, data: dict) -> None:
        """Make one spectrum's data (see :func:`~skcannon.inference.posterior.spectrum_data`)
        the PyMC model's."""
        import pymc as pm

        with self.pymc_model:
            pm.set_data(data)

    def draw(self, problem, *, draws: int, tune: int, chains: int, seed: int,
             initial: np.ndarray | None, progressbar: bool, cores: int | None = None):
        """Draws of ``problem`` (a LogPosterior), as arviz.InferenceData (see the module)."""
        import pymc as pm

        self.set_data(problem.data)
        start = None
        if self.nuisance is not None:
            start = problem.initvals()          # the joint optimizer's best fit
        elif initial is not None:
            start = {n: float(v) for n, v in zip(problem.names, problem.priors.inside(initial),
                                                  strict=True)}
        with self.pymc_model:
            return pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed,
                             cores=cores or min(chains, 2), initvals=start,
                             progressbar=progressbar, compute_convergence_checks=False)


class NutpieSampler(PyMCSampler):
    """nutpie's NUTS (the fastest measured: benchmarks/bench_mcmc.py). Parameters as
    :class:`PyMCSampler`.

    With ``likelihood="quadratic"`` nutpie samples the kernel of
    :mod:`skcannon.inference.compiled` (compiled by numba once per machine and cached on disk;
    the same target as the PyMC model up to a constant), so neither PyMC nor a per-process
    compilation is needed; with "pixels", the PyMC model compiled once per process with numba
    (then only the data change).
    """

    def __init__(self, state, priors: LabelPriors, likelihood: str, nuisance=None) -> None:
        _require("nutpie", "nutpie")
        self.state, self.priors, self.likelihood = state, priors, likelihood
        self.nuisance = nuisance
        self._pymc_model = None
        self._compiled = None
        self._kernel_failed = False      # nutpie's private model API differed: PyMC path

    @property
    def pymc_model(self):
        """The PyMC model (built on first use; compiled by nutpie with numba, so PyTensor's
        C BLAS is not needed)."""
        if self._pymc_model is None:
            _no_c_blas_needed()
        return super().pymc_model

    def draw(self, problem, *, draws: int, tune: int, chains: int, seed: int,
             initial: np.ndarray | None, progressbar: bool, cores: int | None = None):
        """Draws of ``problem`` (a LogPosterior), as arviz.InferenceData (``cores`` unused)."""
        import nutpie

        if self.likelihood == "quadratic" and self.nuisance is None and not self._kernel_failed:
            try:
                compiled = self._kernel_model(problem, initial)
                return nutpie.sample(compiled, draws=draws, tune=tune, chains=chains,
                                     seed=seed, progress_bar=progressbar)
            except (ImportError, AttributeError, TypeError) as exc:   # nutpie's private API
                self._kernel_failed = True
                warnings.warn(f"nutpie {nutpie.__version__}: the cached-kernel path is not "
                              f"available ({type(exc).__name__}: {exc}); sampling the PyMC "
                              "model compiled by nutpie instead (same posterior, slower start)",
                              RuntimeWarning, stacklevel=2)
        _require("pymc", "nutpie")
        if self._compiled is None:            # compiled once, then only the data change
            self._compiled = nutpie.compile_pymc_model(self.pymc_model)
        compiled = self._compiled.with_data(**problem.data)
        if self.nuisance is not None:
            init_mean = problem.unconstrained()            # the joint optimizer's best fit
        else:
            init_mean = None if initial is None else problem.priors.unconstrained(initial)
        return nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed,
                             progress_bar=progressbar, init_mean=init_mean)

    def _kernel_model(self, problem, initial: np.ndarray | None):
        """nutpie's model of one spectrum's quadratic posterior on the cached kernel."""
        from skcannon.inference.compiled import kernel_arrays, nutpie_model

        arrays = {**kernel_arrays(self.state, self.priors),
                  **{k: np.asarray(v, dtype=np.float64, order="C")
                     for k, v in problem.data.items()}}
        centre = problem.priors.unconstrained(self.state.scaling.offsets if initial is None
                                              else initial)
        jitter = 1e-2 * (1.0 if self.priors.bounds is not None else self.priors.sigma)

        def initial_point(seed):
            return centre + jitter * np.random.default_rng(seed).uniform(-1, 1, len(centre))

        return nutpie_model(arrays, problem.names, initial_point)


class EmceeSampler:
    """emcee's ensemble sampler on ``LogPosterior.log_prob`` (no gradient, no compilation; pure
    numpy, every walker evaluated at once; differential-evolution moves).

    ``chains`` becomes the number of walkers, at least :data:`WALKERS_PER_LABEL` per label
    (walkers are reported as the chains of the InferenceData); they start in a small ball
    around ``initial`` (or the training mean), and the first ``tune`` steps are discarded.
    Parameters as :class:`PyMCSampler`.
    """

    def __init__(self, state, priors: LabelPriors, likelihood: str, nuisance=None) -> None:
        _require("emcee", "emcee")
        self.scales = np.asarray(state.scaling.scales, float)
        self.centre = np.asarray(state.scaling.offsets, float)
        if nuisance is not None:           # the sampled labels, then the RV
            self.scales = np.r_[self.scales[nuisance.free], [RV_BALL] * nuisance.fit_rv]
        self.nuisance = nuisance

    def _start(self, problem, initial: np.ndarray | None) -> tuple:
        """The ball's centre and a function moving walkers inside the priors."""
        if self.nuisance is None:
            centre = problem.priors.inside(self.centre if initial is None else initial)
            return centre, problem.priors.inside
        return problem.best, lambda ball: ball     # the joint best fit; a tiny ball around it

    def draw(self, problem, *, draws: int, tune: int, chains: int, seed: int,
             initial: np.ndarray | None, progressbar: bool, cores: int | None = None):
        """Draws of ``problem`` (a LogPosterior), as arviz.InferenceData (``cores`` unused)."""
        import arviz as az
        import emcee

        n_labels = len(problem.names)
        n_walkers = max(chains, WALKERS_PER_LABEL * n_labels)
        rng = np.random.default_rng(seed)
        centre, inside = self._start(problem, initial)
        ball = centre + INITIAL_BALL * self.scales * rng.standard_normal((n_walkers, n_labels))
        moves = [(emcee.moves.DEMove(), DE_FRACTION), (emcee.moves.DESnookerMove(),
                                                       1 - DE_FRACTION)]
        sampler = emcee.EnsembleSampler(n_walkers, n_labels, problem.log_prob, moves=moves,
                                        vectorize=True)
        sampler.random_state = np.random.RandomState(seed).get_state()
        sampler.run_mcmc(inside(ball), tune + draws, progress=progressbar)
        chain = sampler.get_chain(discard=tune)                      # (draws, walkers, L)
        posterior = {name: chain[:, :, i].T for i, name in enumerate(problem.names)}
        log_prob = sampler.get_log_prob(discard=tune).T
        return az.from_dict(posterior=posterior, sample_stats={
            "lp": log_prob, "diverging": np.zeros(log_prob.shape, dtype=bool)})


#: The registered posterior back ends, by name.
SAMPLERS: dict[str, type] = {"nutpie": NutpieSampler, "pymc": PyMCSampler,
                             "emcee": EmceeSampler}


def register_sampler(name: str, cls: type, *, replace: bool = False) -> type:
    """Make ``cls`` the posterior back end called ``name``.

    Parameters
    ----------
    name : str
        The back end's name (``CannonPosterior(sampler=name)``, ``skcannon posterior
        --sampler``).
    cls : type
        ``cls(state, priors, likelihood)`` with a method ``draw(problem, *, draws, tune,
        chains, seed, initial, progressbar, cores) -> arviz.InferenceData`` (see the module).
    replace : bool, default=False
        Allow replacing a back end already registered under ``name``.

    Returns
    -------
    type
        ``cls``, unchanged.

    Raises
    ------
    ValueError
        ``name`` is empty or already registered (without ``replace``), or ``cls`` has no
        ``draw``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a sampler's name must be a non-empty string; got {name!r}")
    if not callable(getattr(cls, "draw", None)):
        raise ValueError(f"sampler {name!r}: {cls!r} has no draw method")
    if name in SAMPLERS and not replace:
        raise ValueError(f"sampler {name!r} is already registered (pass replace=True to "
                         "replace it)")
    SAMPLERS[name] = cls
    return cls


def sampler_class(name: str) -> type:
    """The back end registered as ``name`` (ValueError listing the registered ones)."""
    try:
        return SAMPLERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"sampler must be one of {', '.join(map(repr, SAMPLERS))}, got "
                         f"{name!r}") from None


def default_sampler() -> str:
    """The fastest sampler installed (measured in benchmarks/bench_mcmc.py): nutpie, else
    PyMC."""
    return "nutpie" if nutpie_installed() else "pymc"
