"""Helpers shared by the figure functions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: A wavelength step this many times the median step starts a new segment (a detector gap).
GAP_FACTOR = 5.0


def new_figure(n_rows: int = 1, n_cols: int = 1, width: float = 7.0, height: float = 2.2,
               **kwargs):
    """A Figure (not attached to pyplot's global state) and its axes, ``height`` per row."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height * n_rows), layout="constrained")
    axes = figure.subplots(n_rows, n_cols, squeeze=False, **kwargs)
    return figure, axes


def save_figure(figure, path: str | Path, *, dpi: int = 150) -> Path:
    """Save a figure (format from the suffix: .png, .pdf, .svg); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    return path


def contiguous_segments(wavelength: np.ndarray) -> list[slice]:
    """Slices of ``wavelength`` (sorted, shape (n_pixels,)) between gaps: wherever a step is
    more than :data:`GAP_FACTOR` times the median step (e.g. between detector chips), so that
    no plotted line crosses a gap. Works on any grid; no survey knowledge needed."""
    wavelength = np.asarray(wavelength, dtype=float)
    if wavelength.size < 2:
        return [slice(0, wavelength.size)]
    step = np.diff(wavelength)
    breaks = np.flatnonzero(step > GAP_FACTOR * np.median(step)) + 1
    edges = [0, *breaks.tolist(), wavelength.size]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def plot_segments(ax, wavelength: np.ndarray, values: np.ndarray, **kwargs) -> None:
    """``ax.plot`` segment by segment (:func:`contiguous_segments`); the label, if any, once."""
    for k, part in enumerate(contiguous_segments(wavelength)):
        ax.plot(wavelength[part], values[part], **(kwargs | {"label": None} if k else kwargs))
