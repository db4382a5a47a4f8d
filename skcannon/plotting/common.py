"""Helpers shared by the figure functions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: A wavelength step this many times the median step starts a new segment (a detector gap).
GAP_FACTOR = 5.0


def new_figure(n_rows: int = 1, n_cols: int = 1, width: float = 7.0, height: float = 2.2,
               **kwargs):
    """A Figure (not attached to pyplot's global state, constrained layout) and its axes.

    Parameters
    ----------
    n_rows, n_cols : int, default=1
        Grid of axes.
    width : float, default=7.0
        Figure width, inches.
    height : float, default=2.2
        Height per row, inches.
    **kwargs
        Passed on to ``Figure.subplots`` (``sharex``, ``gridspec_kw`` ...).

    Returns
    -------
    figure : matplotlib.figure.Figure
    axes : ndarray of Axes, shape (n_rows, n_cols)
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height * n_rows), layout="constrained")
    axes = figure.subplots(n_rows, n_cols, squeeze=False, **kwargs)
    return figure, axes


def save_figure(figure, path: str | Path, *, dpi: int = 150) -> Path:
    """Save a figure (format from the suffix: .png, .pdf, .svg) atomically, creating missing
    directories.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
    path : str or path-like
        The file to write.
    dpi : int, default=150
        Resolution of raster formats.

    Returns
    -------
    Path
        ``path``.
    """
    from skcannon.integrity import atomic_write

    path = Path(path)
    with atomic_write(path, overwrite=True) as tmp:    # the temporary name hides the suffix
        figure.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".").lower() or None)
    return path


#: x-axis names of spectra with and without a recorded wavelength grid.
WAVELENGTH_AXIS, PIXEL_AXIS = r"vacuum wavelength ($\AA$)", "pixel (no wavelength recorded)"


def spectral_axis(wavelength, n_pixels: int) -> tuple[np.ndarray, str, bool]:
    """The x coordinate of a spectrum's pixels: its wavelengths, or the pixel index when none
    were recorded (a model trained from bare arrays), so that every figure can be drawn.

    Parameters
    ----------
    wavelength : array_like of shape (n_pixels,) or None
    n_pixels : int

    Returns
    -------
    x : ndarray of shape (n_pixels,)
    label : str
        :data:`WAVELENGTH_AXIS` or :data:`PIXEL_AXIS`.
    has_wavelength : bool
        False for the pixel index (wavelength windows then do not apply).
    """
    if wavelength is None:
        return np.arange(n_pixels, dtype=float), PIXEL_AXIS, False
    return np.asarray(wavelength, dtype=float), WAVELENGTH_AXIS, True


def contiguous_segments(wavelength: np.ndarray) -> list[slice]:
    """Slices of ``wavelength`` between gaps: wherever a step is more than :data:`GAP_FACTOR`
    times the median step (e.g. between detector chips), so that no plotted line crosses a
    gap. Works on any grid; no survey knowledge needed.

    Parameters
    ----------
    wavelength : ndarray of shape (n_pixels,)
        Sorted wavelengths (or any increasing pixel coordinate).

    Returns
    -------
    list of slice
        Contiguous segments covering every pixel, in order (one for fewer than 2 pixels).
    """
    wavelength = np.asarray(wavelength, dtype=float)
    if wavelength.size < 2:
        return [slice(0, wavelength.size)]
    step = np.diff(wavelength)
    breaks = np.flatnonzero(step > GAP_FACTOR * np.median(step)) + 1
    edges = [0, *breaks.tolist(), wavelength.size]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def plot_segments(ax, wavelength: np.ndarray, values: np.ndarray, **kwargs) -> None:
    """``ax.plot`` segment by segment (:func:`contiguous_segments`); the label, if any, once.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    wavelength : ndarray of shape (n_pixels,)
    values : ndarray of shape (n_pixels,)
    **kwargs
        Passed on to ``ax.plot``.
    """
    for k, part in enumerate(contiguous_segments(wavelength)):
        ax.plot(wavelength[part], values[part], **(kwargs | {"label": None} if k else kwargs))
