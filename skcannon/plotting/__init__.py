"""Figures. Each function takes data or a model and returns a matplotlib Figure; saving is
separate (:func:`save_figure`). matplotlib is imported inside the functions; no LaTeX needed."""

from skcannon.plotting.common import save_figure
from skcannon.plotting.normalization import normalization_figure

__all__ = ["normalization_figure", "save_figure"]
