"""Figures. Each function takes data or a model and returns a matplotlib Figure; saving is
separate (:func:`save_figure`). matplotlib is imported inside the functions; no LaTeX needed."""

from skcannon.plotting.common import save_figure
from skcannon.plotting.normalization import normalization_figure, star_normalization_figure
from skcannon.plotting.validation import model_vs_data_figure, one_to_one_figure, pull_figure

__all__ = ["model_vs_data_figure", "normalization_figure", "one_to_one_figure", "pull_figure",
           "save_figure", "star_normalization_figure"]
