"""Correlated model error: a few spectral "error factors" learned from the training residuals.

The classic Cannon treats the model's error as independent between pixels (s_p^2). On real
spectra the residuals of a fitted model are correlated between pixels (a star's mismatch at
one line comes with mismatches at related lines), and a chi^2 that ignores this over-counts the
evidence of those pixels. The factors U (n_pixels, r) model that part of the error:

    Cov(f_n - model_n) = diag(sigma_n^2 + s^2) + U U^T,

U U^T being the leading r eigen-components of the residuals' off-diagonal covariance
(the sample covariance of the training residuals with its diagonal - already described by
noise and s^2 - removed; negative components dropped). Label fitting uses the full covariance
through the Woodbury identity at O(n_pixels r k) per star (see ``skcannon.inference.fitting``).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator, eigsh

#: Default number of factors (``Cannon.n_error_factors``): chosen by cross-validation on the
#: real labelled giants (benchmarks/bench_real.py; 5-20 all help there, 10 best).
DEFAULT_ERROR_FACTORS = 10
#: Relative tolerance of the iterative eigen-solver.
EIGEN_TOLERANCE = 1e-6


def learn_error_factors(residual: np.ndarray, good: np.ndarray, n_factors: int, *,
                        seed: int = 0) -> np.ndarray:
    """The error factors of training residuals.

    Parameters
    ----------
    residual : ndarray, shape (n_stars, n_pixels)
        Flux minus the model at the training labels.
    good : ndarray of bool, shape (n_stars, n_pixels)
        Usable pixels (others count as missing).
    n_factors : int
        Number of factors r (>= 1, < n_stars and < n_pixels).
    seed : int
        Seed of the eigen-solver's starting vector.

    Returns
    -------
    ndarray, shape (n_pixels, n_factors)
        Columns ordered by decreasing variance; zero columns where fewer positive components
        exist.
    """
    n_stars, n_pixels = residual.shape
    if not 1 <= n_factors < min(n_stars, n_pixels):
        raise ValueError(f"n_error_factors must be between 1 and {min(n_stars, n_pixels) - 1} "
                         f"for {n_stars} stars and {n_pixels} pixels; got {n_factors}")
    count = np.maximum(good.sum(axis=0), 1)
    centred = np.where(good, residual, 0.0)
    centred -= centred.sum(axis=0) / count
    centred[~good] = 0.0
    variance = np.einsum("np,np->p", centred, centred) / np.maximum(count - 1, 1)
    scale = 1.0 / max(n_stars - 1, 1)

    def matvec(v: np.ndarray) -> np.ndarray:   # (R^T R / (n - 1) - diag(var)) v
        v = np.asarray(v).ravel()
        return scale * (centred.T @ (centred @ v)) - variance * v

    operator = LinearOperator((n_pixels, n_pixels), matvec=matvec, dtype=float)
    start = np.random.default_rng(seed).standard_normal(n_pixels)
    values, vectors = eigsh(operator, k=n_factors, which="LA", v0=start, tol=EIGEN_TOLERANCE)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    return vectors * np.sqrt(np.clip(values, 0.0, None))[None, :]
