"""Label inference: batched multi-start fitting (and the TRF reference path)."""

from skcannon.inference.fitting import LabelFit, fit_labels, sufficient_statistics
from skcannon.inference.reference import fit_labels_trf

__all__ = ["LabelFit", "fit_labels", "fit_labels_trf", "sufficient_statistics"]
