"""The Cannon as the last step of a Pipeline: spectra -> labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from skcannon.apogee.constants import DEFAULT_LABELS
from skcannon.model.cannon import Cannon


class CannonRegressor(RegressorMixin, BaseEstimator):
    """Label-predicting adaptor: ``fit(spectra, labels)`` trains a :class:`Cannon`,
    ``predict(spectra)`` infers labels. So ``make_pipeline(masker, regridder, normalizer,
    CannonRegressor())`` works with ``cross_validate`` and ``GridSearchCV``.

    Parameters are those of :class:`Cannon` plus those of label fitting (``n_starts``,
    ``margin``, ``seed``).

    Attributes
    ----------
    cannon_ : Cannon
        The trained generative model.
    fit_ : LabelFit
        The label fit of the last ``predict`` call (uncertainties, chi^2, flags).
    """

    def __init__(self, label_names: Sequence[str] = DEFAULT_LABELS, order: int = 2,
                 scatter_grid=None, regularization: float = 0.0, min_good_fraction: float = 0.5,
                 n_starts: int = 4, margin: float = 0.1, seed: int = 0) -> None:
        self.label_names = label_names
        self.order = order
        self.scatter_grid = scatter_grid
        self.regularization = regularization
        self.min_good_fraction = min_good_fraction
        self.n_starts = n_starts
        self.margin = margin
        self.seed = seed

    def fit(self, X, y, wavelength=None):
        """Train the Cannon on spectra ``X`` (n_stars, 3, n_pixels) with labels ``y``."""
        self.cannon_ = Cannon(label_names=self.label_names, order=self.order,
                              scatter_grid=self.scatter_grid,
                              regularization=self.regularization,
                              min_good_fraction=self.min_good_fraction).fit(y, X, wavelength)
        return self

    def predict(self, X) -> np.ndarray:
        """Inferred labels, shape (n_stars, n_labels)."""
        check_is_fitted(self, "cannon_")
        self.fit_ = self.cannon_.infer_labels(X, n_starts=self.n_starts, margin=self.margin,
                                              seed=self.seed)
        return self.fit_.labels

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.target_tags.multi_output = True
        return tags
