"""The Cannon as the last step of a Pipeline: spectra -> labels."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from skcannon.inference.fitting import LabelFit
from skcannon.labels import DEFAULT_LABELS
from skcannon.model.cannon import CANNON_PARAMETER_CONSTRAINTS, Cannon
from skcannon.model.error_factors import DEFAULT_ERROR_FACTORS
from skcannon.spectra import spectra_tags

#: The :class:`Cannon`'s parameters that :class:`CannonRegressor` passes on.
_CANNON_PARAMS = ("label_names", "order", "terms", "censors", "n_error_factors", "clean_k",
                  "bad_labels", "calibration_folds", "scatter_grid", "regularization",
                  "min_good_fraction")


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
    """

    _parameter_constraints: dict = {
        **{name: CANNON_PARAMETER_CONSTRAINTS[name] for name in _CANNON_PARAMS},
        "n_starts": [Interval(Integral, 0, None, closed="left")],
        "margin": [Interval(Real, 0, None, closed="left")],
        "seed": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(self, label_names: Sequence[str] = DEFAULT_LABELS, *, order: int = 2,
                 terms: str | None = None, censors: dict | None = None,
                 n_error_factors: int = DEFAULT_ERROR_FACTORS, clean_k: float | None = None,
                 bad_labels: str = "raise", calibration_folds: int = 0, scatter_grid=None,
                 regularization: float = 0.0, min_good_fraction: float = 0.5,
                 n_starts: int = 4, margin: float = 0.1, seed: int = 0) -> None:
        self.label_names = label_names
        self.order = order
        self.terms = terms
        self.censors = censors
        self.n_error_factors = n_error_factors
        self.clean_k = clean_k
        self.bad_labels = bad_labels
        self.calibration_folds = calibration_folds
        self.scatter_grid = scatter_grid
        self.regularization = regularization
        self.min_good_fraction = min_good_fraction
        self.n_starts = n_starts
        self.margin = margin
        self.seed = seed

    def fit(self, X, y, *, wavelength=None):
        """Train the Cannon on spectra ``X`` (n_stars, 3, n_pixels) with labels ``y``."""
        self._validate_params()
        params = {name: getattr(self, name) for name in _CANNON_PARAMS}
        self.cannon_ = Cannon(**params).fit(y, X, wavelength=wavelength)
        return self

    def infer_labels(self, X) -> LabelFit:
        """The full label fit of spectra ``X``: labels, covariances, chi^2 and flags."""
        check_is_fitted(self, "cannon_")
        return self.cannon_.infer_labels(X, n_starts=self.n_starts, margin=self.margin,
                                         seed=self.seed)

    def predict(self, X) -> np.ndarray:
        """Inferred labels, shape (n_stars, n_labels) (the estimator is not changed; the full
        fit is :meth:`infer_labels`)."""
        return self.infer_labels(X).labels

    def __sklearn_tags__(self):
        tags = spectra_tags(super().__sklearn_tags__())
        tags.target_tags.multi_output = True
        return tags
