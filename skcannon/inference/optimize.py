"""Batched Levenberg-Marquardt over the quadratic form of chi^2 (see
:mod:`skcannon.inference.quadratic`), its first guess and the spread starting points.

The Jacobian of the model is Theta dv/dl, so the Gauss-Newton matrix is D^T G D and the gradient
D^T (h - G (v - v0)), with D = dv/dl (k x L). The vectorizer (design matrix and Jacobian, a
:class:`skcannon.model.PolynomialVectorizer`) is passed in: this module does not import the
model package.
"""

from __future__ import annotations

import numpy as np

from skcannon.inference.quadratic import SufficientStatistics, chi2_of

#: Levenberg-Marquardt damping: start, and factors on failure / success.
LM_START, LM_UP, LM_DOWN = 1e-3, 10.0, 0.3


def levenberg_marquardt(stats: SufficientStatistics, vectorizer,
                        start: np.ndarray, stars: np.ndarray, lower: np.ndarray,
                        upper: np.ndarray, max_iter: int = 100, ftol: float = 1e-10
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimize chi^2 for many (star, start) pairs at once, within box bounds.

    Parameters
    ----------
    start : ndarray, shape (m, L)  scaled starting labels
    stars : ndarray of int, shape (m,)  the star of each row
    lower, upper : ndarray, shape (L,)  scaled bounds

    ftol : float
        Converged when the decrease an undamped Gauss-Newton step promises is below ``ftol``
        x chi^2 (a minimum), or, on a bound, when no feasible step lowers chi^2 any more. A row
        whose damping grows without bound elsewhere stops unconverged.

    Returns
    -------
    labels (m, L), chi2 (m,), converged (m,) bool
    """
    labels = np.clip(start, lower, upper)
    G, h = stats.G[stars], stats.h[stars]
    chi2 = chi2_of(stats, vectorizer.design_matrix(labels), stars)
    damping = np.full(len(labels), LM_START)
    converged = np.zeros(len(labels), dtype=bool)
    stopped = np.zeros(len(labels), dtype=bool)
    eye = np.eye(labels.shape[1])
    for _ in range(max_iter):
        active = ~stopped
        if not active.any():
            break
        v = vectorizer.design_matrix(labels[active])
        D = vectorizer.jacobian(labels[active])                      # (m, k, L)
        GD = G[active] @ D
        hessian = np.einsum("mkl,mkj->mlj", D, GD)                     # D^T G D
        dv = v - stats.centre[stars[active]]
        gradient = np.einsum("mkl,mk->ml", D, h[active] - np.einsum("mkj,mj->mk", G[active], dv))
        diag = np.einsum("mll->ml", hessian)
        blocked = _blocked(labels[active], gradient, lower, upper)
        at_minimum = _at_minimum(gradient, hessian, chi2[active], blocked, ftol)
        system = hessian + damping[active, None, None] * eye * np.maximum(diag, 1e-12)[:, :, None]
        step = _solve_psd(*_free_system(system, gradient, blocked))
        trial = np.clip(labels[active] + step, lower, upper)
        trial_chi2 = chi2_of(stats, vectorizer.design_matrix(trial), stars[active])
        better = trial_chi2 < chi2[active]
        index = np.flatnonzero(active)
        labels[index[better]] = trial[better]
        chi2[index[better]] = trial_chi2[better]
        damping[index[better]] *= LM_DOWN
        damping[index[~better]] *= LM_UP
        # on a bound the promised step points outside: converged when no feasible step helps
        converged[index[at_minimum]] = True
        stalled = ~better & (damping[index] > 1e10)
        converged[index[stalled & _on_bound(labels[index], lower, upper)]] = True
        stopped[index[at_minimum | stalled]] = True
    converged &= np.isfinite(chi2)
    return labels, chi2, converged


def _at_minimum(gradient: np.ndarray, hessian: np.ndarray, chi2: np.ndarray,
                blocked: np.ndarray, ftol: float) -> np.ndarray:
    """Rows at a minimum: the decrease of chi^2 an undamped Gauss-Newton step would promise is
    ~0 (below ``ftol`` x chi^2); gradient components pushing through a bound the label sits on
    do not count.

    Parameters
    ----------
    gradient : ndarray, shape (m, L)
    hessian : ndarray, shape (m, L, L)
    chi2 : ndarray, shape (m,)
    blocked : ndarray of bool, shape (m, L)  labels held by their bound (:func:`_blocked`)
    ftol : float

    Returns
    -------
    ndarray of bool, shape (m,)
    """
    free = np.where(blocked, 0.0, gradient)
    promise = np.einsum("ml,ml->m", free, _solve_psd(hessian, free))
    return promise <= np.maximum(ftol * np.abs(chi2), 1e-9)


def _blocked(labels: np.ndarray, gradient: np.ndarray, lower: np.ndarray,
             upper: np.ndarray) -> np.ndarray:
    """Labels on a bound whose descent direction (``gradient``) points through it, (m, L)."""
    tol = 1e-9 * (upper - lower)
    return (((labels <= lower + tol) & (gradient < 0))
            | ((labels >= upper - tol) & (gradient > 0)))


def _free_system(system: np.ndarray, gradient: np.ndarray, blocked: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The damped system restricted to the labels free to move (a projected step): a label
    blocked by its bound (:func:`_blocked`) gets an identity row and column and a zero right
    side, so its step is 0 and the others' step is the reduced system's, not a step solved
    with it moving and then clipped (which fails to lower chi^2 where the labels are
    correlated, leaving a star on a bound to run to ``max_iter``)."""
    if not blocked.any():
        return system, gradient
    free = ~blocked
    system = system * free[:, :, None] * free[:, None, :]
    system += np.eye(system.shape[-1]) * blocked[:, :, None]
    return system, np.where(blocked, 0.0, gradient)


def _solve_psd(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Batched solve of (m, L, L) x = (m, L), least-squares where singular."""
    try:
        return np.linalg.solve(matrix, vector[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return np.einsum("mij,mj->mi", np.linalg.pinv(matrix), vector)


def _on_bound(labels: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    tol = 1e-9 * (upper - lower)
    return np.any((labels <= lower + tol) | (labels >= upper - tol), axis=1)


def linearized_guess(stats: SufficientStatistics, vectorizer,
                     lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """First guess: solve the linear least squares for the whole design vector v (the Cannon's
    classic trick) and read the labels off its linear terms, clipped to the bounds."""
    k = stats.G.shape[1]
    ridge = (1e-10 * np.trace(stats.G, axis1=1, axis2=2) + 1e-300)[:, None, None] * np.eye(k)
    v = stats.centre + _solve_psd(stats.G + ridge, stats.h)
    linear = [vectorizer.terms.index((i,)) for i in range(vectorizer.n_labels)]
    scale = np.where(np.abs(v[:, :1]) > 1e-12, v[:, :1], 1.0)     # v_0 should be 1
    return np.clip(v[:, linear] / scale, lower, upper)
