"""The Cannon as the last step of a Pipeline: spectra -> labels (see docs/model.rst)."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skcannon.inference.fitting import LabelFit
from skcannon.model.cannon import Cannon, check_unchanged
from skcannon.spectra import spectra_tags

#: Label-fitting paths of :meth:`Cannon.infer_labels`.
INFERENCE_METHODS = ("lm", "trf")


class CannonRegressor(RegressorMixin, BaseEstimator):
    """Spectra -> labels: wraps a :class:`Cannon` (labels -> spectra), as scikit-learn's
    ``TransformedTargetRegressor`` wraps its ``regressor``.

    ``fit(X, y)`` trains a clone of ``cannon`` on spectra ``X`` and labels ``y``;
    ``predict(X)`` infers labels. So ``make_pipeline(masker, regridder, normalizer,
    CannonRegressor(Cannon(...)))`` works with ``cross_validate`` and ``GridSearchCV``, which
    reach the model's parameters as ``cannonregressor__cannon__order``: each Cannon parameter
    is declared once, in :class:`Cannon`. The two faces are described in docs/model.rst.

    Parameters
    ----------
    cannon : Cannon or None, default=None
        The unfitted generative model (None: ``Cannon()``, the default labels and order 2).
        It is cloned in ``fit``; the clone, trained, is ``cannon_``.
    method : {"lm", "trf"}, default="lm"
        Label-fitting path (:meth:`Cannon.infer_labels`).
    n_starts : int, default=4
        Starts per star besides the linearized guess ("lm").
    margin : float, default=0.1
        Bounds: the training label range widened by this fraction on each side.
    seed : int, default=0
        Seed of the spread starting points.
    fit_rv : bool, default=False
        Fit a radial velocity with the labels (:meth:`Cannon.infer_labels`).
    rv_max : float, default=400.0
        With ``fit_rv``: velocity bounds (-rv_max, rv_max), km/s.
    continuum_order : int or None, default=None
        Per-chip continuum polynomial profiled out with the labels (None: none).

    Attributes
    ----------
    cannon_ : Cannon
        The trained generative model.
    """

    _parameter_constraints: dict = {
        "cannon": [HasMethods(["fit", "infer_labels"]), None],
        "method": [StrOptions(set(INFERENCE_METHODS))],
        "n_starts": [Interval(Integral, 0, None, closed="left")],
        "margin": [Interval(Real, 0, None, closed="left")],
        "seed": [Interval(Integral, 0, None, closed="left")],
        "fit_rv": ["boolean"],
        "rv_max": [Interval(Real, 0, None, closed="neither")],
        "continuum_order": [Interval(Integral, 0, None, closed="left"), None],
    }

    def __init__(self, cannon: Cannon | None = None, *, method: str = "lm", n_starts: int = 4,
                 margin: float = 0.1, seed: int = 0, fit_rv: bool = False,
                 rv_max: float = 400.0, continuum_order: int | None = None) -> None:
        self.cannon = cannon
        self.method = method
        self.n_starts = n_starts
        self.margin = margin
        self.seed = seed
        self.fit_rv = fit_rv
        self.rv_max = rv_max
        self.continuum_order = continuum_order

    @classmethod
    def from_fitted(cls, cannon: Cannon, **inference_params) -> CannonRegressor:
        """A fitted regressor around an already-fitted ``cannon`` (no retraining).

        Parameters
        ----------
        cannon : Cannon
            A fitted model; it becomes ``cannon_`` (not copied), and an unfitted clone of it
            the ``cannon`` parameter (so ``get_params`` and ``clone`` work as usual).
        **inference_params
            ``method``, ``n_starts``, ``margin``, ``seed``, ``fit_rv``, ``rv_max``,
            ``continuum_order``.

        Returns
        -------
        CannonRegressor
        """
        check_is_fitted(cannon, "theta_")
        regressor = cls(clone(cannon), **inference_params)
        regressor._validate_params()
        regressor.cannon_ = cannon
        return regressor

    def fit(self, X, y, *, wavelength=None, label_err=None):
        """Train a clone of ``cannon`` on spectra ``X`` with labels ``y``.

        Parameters
        ----------
        X : ndarray, shape (n_stars, 3, n_pixels)
            Normalized spectra.
        y : array_like, shape (n_stars, n_labels), or DataFrame with the label columns
            Labels in the Cannon's ``label_names`` order.
        wavelength : array_like, shape (n_pixels,), optional
            Stored with the model.
        label_err : array_like, shape (n_stars, n_labels), optional
            Errors of ``y`` (see :meth:`Cannon.fit`; cross-validation splits it per star).

        Returns
        -------
        self
        """
        self._validate_params()
        cannon = Cannon() if self.cannon is None else clone(self.cannon)
        self.cannon_ = cannon.fit(y, X, wavelength=wavelength, label_err=label_err)
        return self

    def check_fitted(self) -> None:
        """Refuse a regressor not fitted, or whose ``cannon`` parameter changed after fit.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Not fitted, or ``cannon`` (e.g. ``cannon__order``) no longer has the parameters
            ``cannon_`` was fitted with (naming the parameter): fit again or set it back.
        """
        check_is_fitted(self, "cannon_")
        fitted = getattr(self.cannon_, "_fitted_params", None)
        template = Cannon() if self.cannon is None else self.cannon
        if fitted is not None and type(template) is not type(self.cannon_):
            raise NotFittedError(f"CannonRegressor: cannon is a {type(template).__name__} "
                                 f"but cannon_ a fitted {type(self.cannon_).__name__}; "
                                 "fit again")
        if fitted is not None:
            check_unchanged(fitted, template.get_params(deep=False), "CannonRegressor cannon")

    def nuisance_options(self) -> dict:
        """The ``fit_rv``, ``rv_bounds`` and ``continuum_order`` keywords of
        :meth:`Cannon.infer_labels` from this estimator's parameters.

        Returns
        -------
        dict
        """
        return {"fit_rv": self.fit_rv, "rv_bounds": (-self.rv_max, self.rv_max),
                "continuum_order": self.continuum_order}

    def infer_labels(self, X) -> LabelFit:
        """The full label fit of spectra ``X`` (n_stars, 3, n_pixels): labels, covariances,
        chi^2 and flags (:meth:`Cannon.infer_labels` with this estimator's options)."""
        self.check_fitted()
        return self.cannon_.infer_labels(X, method=self.method, n_starts=self.n_starts,
                                         margin=self.margin, seed=self.seed,
                                         **self.nuisance_options())

    def predict(self, X) -> np.ndarray:
        """Inferred labels of spectra ``X`` (n_stars, 3, n_pixels).

        Returns
        -------
        ndarray, shape (n_stars, n_labels)
            The estimator is not changed; the full fit is :meth:`infer_labels`.
        """
        return self.infer_labels(X).labels

    def __sklearn_tags__(self):
        tags = spectra_tags(super().__sklearn_tags__())
        tags.target_tags.multi_output = True
        return tags
