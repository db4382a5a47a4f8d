"""Continuum regions: the wavelength ranges (e.g. detector chips) normalized separately.

A survey's regions are ``(start, stop)`` pairs in Angstrom; a pixel belongs to a region when
start <= wavelength < stop. ``regions=None`` means one region over the whole grid.
"""

from __future__ import annotations

import numpy as np


def region_ranges(regions, wavelength: np.ndarray) -> np.ndarray:
    """The continuum regions as an array, checked; one region over the whole grid for None.

    Parameters
    ----------
    regions : array_like of shape (n_regions, 2), or None
        ``(start, stop)`` wavelength ranges, increasing and not overlapping.
    wavelength : ndarray, shape (n_pixels,)
        The grid (only used for None: the region is ``(min, max)`` of the grid).

    Returns
    -------
    ndarray, shape (n_regions, 2)

    Raises
    ------
    ValueError
        Naming ``regions``: not pairs, not finite, empty, a start not below its stop, or
        regions out of order or overlapping.
    """
    if regions is None:
        return np.array([[wavelength.min(), wavelength.max()]])
    ranges = np.asarray(regions, dtype=float)
    if ranges.ndim != 2 or ranges.shape[1] != 2 or len(ranges) == 0:
        raise ValueError(f"regions must be a sequence of (start, stop) wavelength pairs; got "
                         f"shape {ranges.shape}")
    if not np.isfinite(ranges).all() or np.any(ranges[:, 0] >= ranges[:, 1]):
        raise ValueError(f"regions must be finite (start, stop) pairs with start < stop; got "
                         f"{ranges.tolist()}")
    if np.any(ranges[1:, 0] < ranges[:-1, 1]):
        raise ValueError(f"regions must be in increasing wavelength order and must not "
                         f"overlap; got {ranges.tolist()}")
    return ranges


def region_of(wavelength: np.ndarray, ranges: np.ndarray, whole_grid: bool) -> np.ndarray:
    """Region index of each pixel (start <= wavelength < stop), -1 outside every region.

    Parameters
    ----------
    wavelength : ndarray, shape (n_pixels,)
    ranges : ndarray, shape (n_regions, 2)
        From :func:`region_ranges`.
    whole_grid : bool
        Every pixel is in region 0 (``regions=None``; the last pixel is inside too).

    Returns
    -------
    ndarray of int, shape (n_pixels,)
    """
    if whole_grid:
        return np.zeros(wavelength.shape, dtype=int)
    out = np.full(wavelength.shape, -1, dtype=int)
    for k, (lo, hi) in enumerate(ranges):
        out[(wavelength >= lo) & (wavelength < hi)] = k
    return out
