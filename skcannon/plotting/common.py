"""Helpers shared by the figure functions."""

from __future__ import annotations

from pathlib import Path


def new_figure(n_rows: int = 1, n_cols: int = 1, width: float = 7.0, height: float = 2.2,
               **kwargs):
    """A Figure (not attached to pyplot's global state) and its axes, ``height`` per row."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height * n_rows), layout="constrained")
    axes = figure.subplots(n_rows, n_cols, squeeze=False, **kwargs)
    return figure, axes


def save_figure(figure, path: str | Path, dpi: int = 150) -> Path:
    """Save a figure (format from the suffix: .png, .pdf, .svg); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    return path
