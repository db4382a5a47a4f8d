"""What a fitted Cannon has learned, as one value: training, model files and the published-model
importer all build a :class:`CannonState`, and :meth:`Cannon._set_state` is the one place that
turns it into the estimator's fitted attributes (field ``x`` becomes attribute ``x_``, except the
fields in :data:`PARAMETER_FIELDS`, which the estimator derives from its parameters).

The state is also what label inference and the posteriors work on (:mod:`skcannon.inference`
takes values, not estimators): it carries the vectorizer, the label names and bounds."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from skcannon.model.hull import inside_hull
from skcannon.model.scaling import LabelScaling
from skcannon.model.vectorizer import PolynomialVectorizer

#: State fields an estimator derives from its parameters (``Cannon.vectorizer_`` from
#: ``label_names``, ``order`` and ``terms``): not stored as fitted attributes.
PARAMETER_FIELDS = ("vectorizer",)


@dataclass(frozen=True)
class CannonState:
    """The learned state of a Cannon (arrays are shared, not copied).

    Attributes
    ----------
    theta : ndarray, shape (n_pixels, n_terms)
    s2 : ndarray, shape (n_pixels,)
    pixel_mask : ndarray of bool, shape (n_pixels,)
    scaling : LabelScaling
    label_range : ndarray, shape (2, n_labels)
        Training minimum and maximum of each label.
    wavelength : ndarray, shape (n_pixels,) or None
    training_log_likelihood, training_chi2, training_dof : ndarray, shape (n_pixels,)
    n_training_stars : int
    training_hash : str
    provenance : dict
    grid_index : ndarray of int, shape (n_pixels,), or None
        Grid point that bracketed each pixel's s^2 (only known right after training).
    censor_mask : ndarray of bool, shape (n_labels, n_pixels), or None
        Where each label's terms may act (None: everywhere; see ``Cannon.censors``).
    error_factors : ndarray, shape (n_pixels, r), or None
        Correlated model error (see :mod:`skcannon.model.error_factors`).
    calibration : ndarray, shape (n_labels,), or None
        Systematic label uncertainty (a floor per label) learned by cross-validation (see
        :mod:`skcannon.inference.calibration`).
    label_hull : ndarray, shape (n_vertices, n_labels), or None
        Vertices of the convex hull of the training labels (physical units; see
        :mod:`skcannon.model.hull`): "inside the training set" in the joint label space. None
        (older model files): the per-label ``label_range`` box.
    vectorizer : PolynomialVectorizer or None
        The model's terms (design matrix and Jacobian); None where the builder leaves it to the
        estimator (``Cannon.state_`` always fills it in).
    """

    theta: np.ndarray
    s2: np.ndarray
    pixel_mask: np.ndarray
    scaling: LabelScaling
    label_range: np.ndarray
    wavelength: np.ndarray | None
    training_log_likelihood: np.ndarray
    training_chi2: np.ndarray
    training_dof: np.ndarray
    n_training_stars: int
    training_hash: str
    provenance: dict = field(default_factory=dict)
    grid_index: np.ndarray | None = None
    censor_mask: np.ndarray | None = None
    error_factors: np.ndarray | None = None
    calibration: np.ndarray | None = None
    label_hull: np.ndarray | None = None
    vectorizer: PolynomialVectorizer | None = None

    @property
    def label_names(self) -> tuple[str, ...]:
        """The labels, in order (those of the scaling)."""
        return tuple(self.scaling.names)

    def label_bounds(self, margin: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
        """Physical lower and upper label bounds.

        Parameters
        ----------
        margin : float, default=0.1
            Fraction of the training range's width added on each side.

        Returns
        -------
        lower, upper : ndarray, shape (n_labels,)
            The training range widened by ``margin`` (shared by label fitting, the TRF path
            and the posteriors' uniform priors).
        """
        low, high = self.label_range
        width = high - low
        return low - margin * width, high + margin * width

    def inside_training(self, labels: np.ndarray) -> np.ndarray:
        """Which label vectors lie inside the training set.

        Parameters
        ----------
        labels : ndarray, shape (n, n_labels)
            Physical units.

        Returns
        -------
        ndarray of bool, shape (n,)
            Inside the convex hull of the training labels and the per-label range (only the
            range for a model without a stored hull; see :mod:`skcannon.model.hull`).
        """
        low, high = self.label_range
        return inside_hull(self.label_hull, labels, low, high)

    def __post_init__(self) -> None:
        # a boolean mask and a state-owned provenance, whoever built the state
        object.__setattr__(self, "pixel_mask", np.asarray(self.pixel_mask, bool))
        object.__setattr__(self, "provenance", dict(self.provenance))
        n_pixels = self.s2.shape[0]
        if self.theta.ndim != 2 or self.theta.shape[0] != n_pixels:
            raise ValueError(f"theta has shape {self.theta.shape}; expected ({n_pixels}, "
                             "n_terms)")
        for name in ("pixel_mask", "training_log_likelihood", "training_chi2", "training_dof"):
            if np.shape(getattr(self, name)) != (n_pixels,):
                raise ValueError(f"{name} has shape {np.shape(getattr(self, name))}; expected "
                                 f"({n_pixels},)")
        if self.censor_mask is not None and (
                np.ndim(self.censor_mask) != 2 or np.shape(self.censor_mask)[1] != n_pixels):
            raise ValueError(f"censor_mask has shape {np.shape(self.censor_mask)}; expected "
                             f"(n_labels, {n_pixels})")
        if self.error_factors is not None and (
                np.ndim(self.error_factors) != 2 or np.shape(self.error_factors)[0] != n_pixels):
            raise ValueError(f"error_factors has shape {np.shape(self.error_factors)}; "
                             f"expected ({n_pixels}, n_factors)")
        if self.wavelength is not None and np.shape(self.wavelength) != (n_pixels,):
            raise ValueError(f"wavelength has shape {np.shape(self.wavelength)}; expected "
                             f"({n_pixels},)")
        if self.label_hull is not None and (
                np.ndim(self.label_hull) != 2
                or np.shape(self.label_hull)[1] != len(self.scaling.names)):
            raise ValueError(f"label_hull has shape {np.shape(self.label_hull)}; expected "
                             f"(n_vertices, {len(self.scaling.names)})")
        if self.vectorizer is not None and (
                self.vectorizer.n_terms != self.theta.shape[1]
                or self.vectorizer.n_labels != len(self.scaling.names)):
            raise ValueError(f"the vectorizer's {self.vectorizer.n_terms} terms of "
                             f"{self.vectorizer.n_labels} labels do not match theta "
                             f"{self.theta.shape} and the labels {tuple(self.scaling.names)}")
