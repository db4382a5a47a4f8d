"""Robust statistics used across the package (one home for the MAD-based scatter)."""

from __future__ import annotations

import numpy as np

#: 1.4826 x median absolute deviation estimates a Gaussian standard deviation.
MAD_TO_SIGMA = 1.4826


def robust_location_scale(values: np.ndarray, axis: int | None = None, *,
                          keepdims: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Median and 1.4826 x median absolute deviation from it, ignoring NaN.

    Parameters
    ----------
    values : array_like
    axis : int, default=None
        Axis along which to compute; None: over all values.
    keepdims : bool, default=False
        Keep ``axis`` with length 1 (to broadcast against ``values``).

    Returns
    -------
    centre, scale : ndarray
        With ``axis`` removed (or kept with length 1 when ``keepdims``).
    """
    values = np.asarray(values, dtype=float)
    centre = np.nanmedian(values, axis=axis, keepdims=True)
    scale = MAD_TO_SIGMA * np.nanmedian(np.abs(values - centre), axis=axis, keepdims=keepdims)
    return (centre if keepdims else np.squeeze(centre, axis=axis)), scale


def robust_scatter(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """1.4826 x the median absolute deviation from the median, ignoring NaN.

    Parameters
    ----------
    values : array_like
    axis : int, default=None
        Axis along which to compute; None: over all values.

    Returns
    -------
    float, or ndarray with ``axis`` removed
    """
    _, scatter = robust_location_scale(values, axis)
    return float(scatter) if np.ndim(scatter) == 0 else scatter


def excess_scatter(squared_residual: np.ndarray, weight: np.ndarray, dof: np.ndarray, *,
                   max_iter: int = 30, rtol: float = 1e-3, atol: float = 1e-8) -> np.ndarray:
    """Extra scatter each row needs beyond its variances: the m >= 0 that solves
    ``sum_p r_p^2 / (v_p + m^2) = dof`` (the maximum-likelihood-style moment equation).

    Parameters
    ----------
    squared_residual : ndarray, shape (n, p)
        Squared residuals (finite; 0 where a pixel is not used).
    weight : ndarray, shape (n, p)
        Inverse of the variance each residual is expected to have, 1 / v (0 where a pixel is
        not used).
    dof : ndarray, shape (n,)
        Degrees of freedom per row (used pixels minus fitted parameters).
    max_iter : int, default=30
        Newton steps at most. The left side is convex and decreasing in m^2, so Newton's
        method from m^2 = 0 climbs monotonically to the root (never overshoots); rows that need
        no extra scatter stop after the first evaluation, and only unfinished rows are
        evaluated again.
    rtol : float, default=1e-3
        A row is done when its step in m^2 is below ``rtol`` x m^2 or ``atol``.
    atol : float, default=1e-8
        Absolute tolerance on m^2 (1e-8: m known to 1e-4 of the continuum).

    Returns
    -------
    ndarray, shape (n,)
        m per row: 0 where the residuals need no more scatter than the variances give.
    """
    r2 = np.asarray(squared_residual, float)
    weight = np.asarray(weight, float)
    dof = np.asarray(dof, float)
    m2 = np.zeros(len(r2))
    active = np.arange(len(r2))
    rows_r2, rows_w = r2, weight                     # the first pass reads the arrays in place
    for iteration in range(max_iter):
        # 1 / (v + m^2) = w / (1 + m^2 w), just w while m^2 = 0
        inverse = rows_w / (1.0 + m2[active, None] * rows_w) if iteration else rows_w
        weighted = rows_r2 * inverse
        excess = weighted.sum(axis=1) - dof[active]
        slope = np.einsum("np,np->n", weighted, inverse)
        step = np.divide(excess, slope, out=np.zeros_like(excess), where=slope > 0)
        step = np.maximum(step, 0.0)
        m2[active] += step
        unfinished = step > np.maximum(rtol * m2[active], atol)
        if not unfinished.any():
            break
        active = active[unfinished]
        rows_r2, rows_w = r2[active], weight[active]
    return np.sqrt(m2)
