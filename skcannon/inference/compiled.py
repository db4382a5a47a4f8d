"""The quadratic log-posterior compiled once per machine: a numba kernel cached on disk.

nutpie compiles the PyMC model with numba in every new process (several seconds; its compiled
C callbacks embed pointers, so numba cannot cache them). The quadratic form of the posterior
(:mod:`skcannon.inference.posterior`: chi^2 = c - 2 h.v + v.G.v in the design vector v) needs
nothing model-specific in its code: the model and the spectrum enter only as arrays (G, h,
c, the term factor indices, the label scaling, the priors). So one kernel,
:func:`quadratic_logp_and_grad`, serves every model and spectrum; numba caches its machine code
in the user's cache directory (:func:`cache_directory`), keyed by numba on this file's source
and the argument types, so a changed kernel recompiles and a changed model never needs to.

It returns the log-density of the *unconstrained* parameters that PyMC's (and so nutpie's)
NUTS samples: a uniform prior's label through the logit of its position in the interval (the
Jacobian included), a normal prior's label as it is - the same target as the PyMC model with
``likelihood="quadratic"`` up to a constant (tests check it).
"""

from __future__ import annotations

import os
from pathlib import Path

import numba
import numpy as np
from numba import carray

#: Environment variable naming the directory of compiled code (default: the user's cache).
CACHE_ENV = "SKCANNON_CACHE_DIR"


def cache_directory() -> Path:
    """Where compiled code is cached: ``$SKCANNON_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/skcannon/compiled`` (``~/.cache/skcannon/compiled``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "skcannon" / "compiled"


def _kernel(x, G, h, c, factor_index, offsets, scales, lo, hi, mu, sigma, uniform, grad):
    """numba source of :func:`quadratic_logp_and_grad` (writes the gradient into ``grad``)."""
    n_labels, k = x.shape[0], h.shape[0]
    factors = np.ones(n_labels + 1)
    d_label = np.ones(n_labels)
    logp = 0.0
    for i in range(n_labels):
        if uniform:
            u = 1.0 / (1.0 + np.exp(-x[i]))
            label = lo[i] + (hi[i] - lo[i]) * u
            d_label[i] = (hi[i] - lo[i]) * u * (1.0 - u)
            # log Jacobian log(u (1 - u)), computed stably; its gradient 1 - 2u
            logp += -np.logaddexp(0.0, -x[i]) - np.logaddexp(0.0, x[i])
            grad[i] = 1.0 - 2.0 * u
        else:
            label = x[i]
            z = (label - mu[i]) / sigma[i]
            logp += -0.5 * z * z
            grad[i] = -z / sigma[i]
        factors[i + 1] = (label - offsets[i]) / scales[i]
    design = np.ones(k)
    for w in range(factor_index.shape[0]):
        for j in range(k):
            design[j] *= factors[factor_index[w, j]]
    g_v = G @ design + G.T @ design - 2.0 * h                     # d chi^2 / d v
    logp += -0.5 * (c - 2.0 * (h @ design) + design @ (G @ design))
    d_scaled = np.zeros(n_labels + 1)
    for j in range(k):
        for w in range(factor_index.shape[0]):
            others = 1.0
            for w2 in range(factor_index.shape[0]):
                if w2 != w:
                    others *= factors[factor_index[w2, j]]
            d_scaled[factor_index[w, j]] += -0.5 * g_v[j] * others
    for i in range(n_labels):
        grad[i] += d_scaled[i + 1] / scales[i] * d_label[i]
    return logp


_COMPILED = _HEADER = _CFUNCS = None


def _cached(compile_):
    """``compile_(cache)`` with numba's cache in :func:`cache_directory` (numba reads the
    setting when a function's cache is set up, at decoration); without a cache where that
    directory cannot be written (then every process compiles)."""
    directory = cache_directory()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        writable = os.access(directory, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        return compile_(False)
    previous = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = str(directory)
    try:
        return compile_(True)
    finally:
        numba.config.CACHE_DIR = previous


def _compiled():
    """The numba-compiled kernel (its cache in :func:`cache_directory`), built once per process."""
    global _COMPILED, _HEADER
    if _COMPILED is None:
        _COMPILED = _cached(lambda cache: numba.njit(cache=cache, fastmath=False)(_kernel))
        _HEADER = _cached(lambda cache: numba.njit(cache=cache)(_header))
    return _COMPILED


def factor_index(terms: list[tuple[int, ...]]) -> np.ndarray:
    """Every design term as ``width`` indices into [1, scaled labels...] (0: the constant 1),
    shape (width, k)."""
    width = max(1, max(len(t) for t in terms))
    index = np.zeros((width, len(terms)), dtype=np.int64)
    for j, term in enumerate(terms):
        index[: len(term), j] = np.asarray(term, dtype=np.int64) + 1
    return index


def quadratic_logp_and_grad(x: np.ndarray, arrays: dict) -> tuple[float, np.ndarray]:
    """The quadratic log-posterior of unconstrained parameters and its gradient.

    Parameters
    ----------
    x : ndarray, shape (n_labels,)
        Unconstrained parameters (uniform priors: logit of the position in the interval).
    arrays : dict
        :func:`kernel_arrays` of the model and priors, with one spectrum's ``G``, ``h``, ``c``.

    Returns
    -------
    logp : float
    grad : ndarray, shape (n_labels,)
    """
    grad = np.empty(len(x))
    logp = _compiled()(np.ascontiguousarray(x, dtype=np.float64), arrays["G"], arrays["h"],
                       float(arrays["c"]), arrays["factor_index"], arrays["offsets"],
                       arrays["scales"], arrays["lo"], arrays["hi"], arrays["mu"],
                       arrays["sigma"], arrays["uniform"], grad)
    return float(logp), grad


def kernel_arrays(state, priors) -> dict:
    """What the kernel needs of a model's learned ``state`` and its ``priors`` (LabelPriors),
    as contiguous float64/int64 arrays (one spectrum's G, h, c are added per spectrum)."""
    n_labels = len(priors.names)
    bounds = priors.bounds if priors.bounds is not None else np.zeros((2, n_labels))
    as_float = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
    return {"factor_index": factor_index(state.vectorizer.terms),
            "offsets": as_float(state.scaling.offsets), "scales": as_float(state.scaling.scales),
            "lo": as_float(bounds[0]), "hi": as_float(bounds[1]), "mu": as_float(priors.mu),
            "sigma": as_float(priors.sigma), "uniform": priors.bounds is not None}


def constrained(x: np.ndarray, arrays: dict) -> np.ndarray:
    """Physical labels of unconstrained parameters ``x`` (n_labels,)."""
    if not arrays["uniform"]:
        return np.asarray(x, dtype=float)
    return arrays["lo"] + (arrays["hi"] - arrays["lo"]) / (1.0 + np.exp(-np.asarray(x)))


def _header(user_data) -> tuple[int, int, int, int]:
    """numba source: (n_labels, k, width, total length) of a :func:`pack` buffer."""
    head = carray(user_data, (3,), np.float64)
    n_labels, k, width = int(head[0]), int(head[1]), int(head[2])
    return n_labels, k, width, 4 + 6 * n_labels + 1 + k + k * k + width * k


def _logp_cfunc(dim, x_, out_, logp_, user_data):
    """numba source of nutpie's C log-density callback on a :func:`pack` buffer."""
    n_labels, k, width, total = _HEADER(user_data)
    if dim != n_labels:
        return -1
    buf = carray(user_data, (total,), np.float64)
    a = 4 + 6 * n_labels
    x, out = carray(x_, (n_labels,)), carray(out_, (n_labels,))
    logp = carray(logp_, (1,))
    index = buf[a + 1 + k + k * k:total].reshape((width, k)).astype(np.int64)
    value = _COMPILED(x, buf[a + 1 + k:a + 1 + k + k * k].reshape((k, k)), buf[a + 1:a + 1 + k],
                      buf[a], index, buf[4:4 + n_labels], buf[4 + n_labels:4 + 2 * n_labels],
                      buf[4 + 2 * n_labels:4 + 3 * n_labels],
                      buf[4 + 3 * n_labels:4 + 4 * n_labels],
                      buf[4 + 4 * n_labels:4 + 5 * n_labels], buf[4 + 5 * n_labels:a],
                      buf[3] > 0, out)
    logp[0] = value
    if not np.isfinite(value) or not np.all(np.isfinite(out)):
        return 3
    return 0


def _expand_cfunc(dim, expanded, x_, out_, user_data):
    """numba source of nutpie's C callback giving the physical labels of ``x``."""
    n_labels, k, width, total = _HEADER(user_data)
    if dim != n_labels or expanded != n_labels:
        return -1
    buf = carray(user_data, (total,), np.float64)
    x, out = carray(x_, (n_labels,)), carray(out_, (n_labels,))
    for i in range(n_labels):
        if buf[3] > 0:
            lo, hi = buf[4 + 2 * n_labels + i], buf[4 + 3 * n_labels + i]
            out[i] = lo + (hi - lo) / (1.0 + np.exp(-x[i]))
        else:
            out[i] = x[i]
    return 0


def pack(arrays: dict) -> np.ndarray:
    """One float64 buffer of :func:`kernel_arrays` with a spectrum's G, h, c (what the C
    callbacks read through nutpie's user-data pointer)."""
    width, k = arrays["factor_index"].shape
    n_labels = len(arrays["offsets"])
    return np.concatenate([[n_labels, k, width, float(arrays["uniform"])],
                           *(arrays[n] for n in ("offsets", "scales", "lo", "hi", "mu",
                                                 "sigma")),
                           [float(arrays["c"])], arrays["h"], np.ravel(arrays["G"]),
                           np.ravel(arrays["factor_index"]).astype(float)])


def _cfuncs():
    """nutpie's two C callbacks (log-density with gradient; physical labels), compiled once
    per machine and cached like the kernel."""
    global _CFUNCS
    if _CFUNCS is None:
        from numba import types

        _compiled()
        double = types.CPointer(types.double)
        logp = types.int64(types.uint64, double, double, double, types.voidptr)
        expand = types.int64(types.uint64, types.uint64, double, double, types.voidptr)
        _CFUNCS = (_cached(lambda cache: numba.cfunc(logp, cache=cache)(_logp_cfunc)),
                   _cached(lambda cache: numba.cfunc(expand, cache=cache)(_expand_cfunc)))
    return _CFUNCS


_MODEL_CLASS = None


def _model_class():
    """nutpie's compiled-model class for the cached C callbacks (defined on first use, as
    nutpie is optional); it drives nutpie's own sampler for PyMC models."""
    global _MODEL_CLASS
    if _MODEL_CLASS is None:
        import dataclasses

        from nutpie import _lib
        from nutpie.sample import CompiledModel

        @dataclasses.dataclass(frozen=True)
        class KernelModel(CompiledModel):
            """One spectrum's quadratic posterior on the cached C callbacks."""

            names: tuple
            user_data: np.ndarray
            initial_point: object

            @property
            def n_dim(self) -> int:
                return len(self.names)

            @property
            def shapes(self) -> dict:
                return {name: () for name in self.names}

            @property
            def coords(self) -> dict:
                return {}

            def _make_model(self, init_mean=None):
                logp, expand = _cfuncs()
                pointer = self.user_data.ctypes.data
                variables = _lib.PyVariable.new_variables(
                    list(self.names), ["float64"] * self.n_dim, [()] * self.n_dim, {}, {})
                return _lib.PyMcModel(_lib.LogpFunc(logp.address, pointer, self),
                                      _lib.ExpandFunc(self.n_dim, self.n_dim, expand.address,
                                                      pointer, self),
                                      variables, self.n_dim, {}, {}, self.initial_point, None)

            def _make_sampler(self, settings, init_mean, cores, progress_type, store):
                return _lib.PySampler.from_pymc(settings, cores, self._make_model(init_mean),
                                                progress_type, store)

        _MODEL_CLASS = KernelModel
    return _MODEL_CLASS


def nutpie_model(arrays: dict, names, initial_point):
    """nutpie's model of one spectrum's quadratic posterior on the cached C callbacks.

    Parameters
    ----------
    arrays : dict
        :func:`kernel_arrays` with the spectrum's ``G``, ``h``, ``c``.
    names : sequence of str
        The labels (the posterior's variables).
    initial_point : callable
        ``initial_point(seed) -> ndarray (n_labels,)``, unconstrained.

    Returns
    -------
    nutpie CompiledModel
        For ``nutpie.sample``.
    """
    return _model_class()(dims={}, names=tuple(names), user_data=pack(arrays),
                          initial_point=initial_point)
