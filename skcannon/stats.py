"""Robust statistics used across the package (one home for the MAD-based scatter)."""

from __future__ import annotations

import numpy as np

#: 1.4826 x median absolute deviation estimates a Gaussian standard deviation.
MAD_TO_SIGMA = 1.4826


def robust_location_scale(values: np.ndarray, axis: int | None = None, *,
                          keepdims: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Median and 1.4826 x median absolute deviation from it, ignoring NaN.

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
    axis : int, optional
        Axis along which to compute (default: all values).

    Returns
    -------
    float, or ndarray with ``axis`` removed
    """
    _, scatter = robust_location_scale(values, axis)
    return float(scatter) if np.ndim(scatter) == 0 else scatter
