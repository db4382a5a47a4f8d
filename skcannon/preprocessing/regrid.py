"""Resampling spectra from one wavelength grid onto another, keeping masked pixels masked."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from skcannon.spectra import (
    BIT_REGRID_MASKED,
    FLUX,
    IVAR,
    MASK,
    check_spectra,
    set_bit,
    spectra_tags,
)

#: Interpolation weights closer than this to 0 or 1 are snapped (exact pixel selections stay exact).
WEIGHT_SNAP = 1e-6


def linear_interpolation_weights(source: np.ndarray, target: np.ndarray
                                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left neighbour index, right-neighbour weight and in-range flag for each target pixel.

    Interpolation is linear in log wavelength. Weights within ``WEIGHT_SNAP`` of 0 or 1 are
    snapped so that a target pixel coinciding with a source pixel takes that pixel alone.

    Parameters
    ----------
    source : ndarray, shape (n_source,)
        Strictly increasing source grid (n_source >= 2).
    target : ndarray, shape (n_target,)
        Target grid.

    Returns
    -------
    left : ndarray of int, shape (n_target,)
    weight : ndarray of float, shape (n_target,)  (value = (1 - w) f[left] + w f[left + 1])
    inside : ndarray of bool, shape (n_target,)
    """
    log_s, log_t = np.log(source), np.log(target)
    if np.any(np.diff(log_s) <= 0):
        raise ValueError("source wavelength grid must be strictly increasing")
    left = np.clip(np.searchsorted(log_s, log_t, side="right") - 1, 0, len(source) - 2)
    weight = (log_t - log_s[left]) / (log_s[left + 1] - log_s[left])
    tolerance = WEIGHT_SNAP * (log_s[1] - log_s[0])
    inside = (log_t >= log_s[0] - tolerance) & (log_t <= log_s[-1] + tolerance)
    weight = np.where(np.abs(weight) < WEIGHT_SNAP, 0.0, weight)
    on_right = np.abs(weight - 1) < WEIGHT_SNAP
    move = on_right & (left + 1 <= len(source) - 2)  # take the right pixel as the left one
    left = np.where(move, left + 1, left)
    weight = np.where(move, 0.0, np.where(on_right, 1.0, weight))
    weight = np.clip(weight, 0.0, 1.0)
    return left, weight, inside


class Regridder(TransformerMixin, BaseEstimator):
    """Resample flux and uncertainty onto another wavelength grid (linear in log wavelength).

    A target pixel takes the masked state of every source pixel it draws on: if either
    neighbour with non-zero weight is masked (ivar 0), the result is masked (ivar 0, bit
    REGRID_MASKED_NEIGHBOUR) so a good pixel is never computed from a masked neighbour. Target
    pixels outside the source grid are masked. Variances propagate as
    ``(1 - w)^2 var_left + w^2 var_right``; bitmasks are OR-ed.

    When every target pixel coincides with a source pixel (APOGEE's apStar 8575 px -> the
    7214-px continuum grid, :func:`skcannon.apogee.apogee_regridder`), resampling is an exact
    pixel selection.

    Parameters
    ----------
    source_wavelength : array_like, shape (n_source,)
        Grid of the input, Angstrom, strictly increasing. Required (None is refused in ``fit``).
    target_wavelength : array_like, shape (n_target,)
        Grid of the output, Angstrom. Required (None is refused in ``fit``).

    Attributes
    ----------
    source_wavelength_ : ndarray, shape (n_source,)
        The input grid.
    wavelength_ : ndarray, shape (n_target,)
        The output grid.
    left_, weight_, inside_ : ndarray, shape (n_target,)
        Interpolation indices, weights and in-range flags.
    """

    _parameter_constraints: dict = {"source_wavelength": ["array-like", None],
                                    "target_wavelength": ["array-like", None]}

    def __init__(self, source_wavelength, target_wavelength) -> None:
        self.source_wavelength = source_wavelength
        self.target_wavelength = target_wavelength

    def fit(self, X=None, y=None):
        """Compute the interpolation weights.

        Parameters
        ----------
        X : array_like of shape (n_stars, 3, n_source), default=None
            Only checked against the source grid.
        y : None
            Ignored.

        Returns
        -------
        self : Regridder

        Raises
        ------
        ValueError
            A grid is missing (naming it), not 1-D, or the source has fewer than 2 pixels or
            is not strictly increasing.
        """
        self._validate_params()
        for name in ("source_wavelength", "target_wavelength"):
            if getattr(self, name) is None:
                raise ValueError(f"Regridder needs {name}: a wavelength grid, shape (n,) "
                                 "(skcannon.apogee.apogee_regridder supplies APOGEE's)")
        source = np.asarray(self.source_wavelength, dtype=float)
        target = np.asarray(self.target_wavelength, dtype=float)
        if source.ndim != 1 or target.ndim != 1 or len(source) < 2:
            raise ValueError("wavelength grids must be 1-D (source with at least 2 pixels)")
        if X is not None:
            check_spectra(X, len(source))
        self.source_wavelength_ = source
        self.wavelength_ = target
        self.left_, self.weight_, self.inside_ = linear_interpolation_weights(source, target)
        return self

    def transform(self, X) -> np.ndarray:
        """Resampled spectra; the input is not modified.

        Parameters
        ----------
        X : array_like, shape (n_stars, 3, n_source)

        Returns
        -------
        ndarray, shape (n_stars, 3, n_target)
        """
        check_is_fitted(self, "wavelength_")
        X = check_spectra(X, len(self.source_wavelength_))
        if not np.any(self.weight_ > 0.0):     # every target pixel is a source pixel
            return self._select(X)
        return self._interpolate(X)

    def _select(self, X: np.ndarray) -> np.ndarray:
        """The exact pixel selection (grids that coincide): what :meth:`_interpolate` gives with
        all weights 0, without its arithmetic (so the inverse variances are not even rounded)."""
        out = X[:, :, self.left_]
        good = (out[:, IVAR] > 0) & self.inside_
        out[:, IVAR] = np.where(good, out[:, IVAR], 0.0)
        set_bit(out[:, MASK], ~good, BIT_REGRID_MASKED)
        out[:, FLUX] = np.where(good | np.isfinite(out[:, FLUX]), out[:, FLUX], 1.0)
        return out

    def _interpolate(self, X: np.ndarray) -> np.ndarray:
        """Linear interpolation between each target pixel's two source neighbours."""
        left, right, w = self.left_, self.left_ + 1, self.weight_
        flux, ivar, mask = X[:, FLUX], X[:, IVAR], X[:, MASK]
        uses_left, uses_right = w < 1.0, w > 0.0
        good = (((ivar[:, left] > 0) | ~uses_left) & ((ivar[:, right] > 0) | ~uses_right)
                & self.inside_)
        out = np.empty((X.shape[0], 3, len(w)))
        out[:, FLUX] = (1 - w) * flux[:, left] + w * flux[:, right]
        with np.errstate(divide="ignore"):
            var = ((1 - w) ** 2 * np.where(uses_left, 1.0 / ivar[:, left], 0.0)
                   + w**2 * np.where(uses_right, 1.0 / ivar[:, right], 0.0))
            out[:, IVAR] = np.where(good, 1.0 / np.where(good, var, 1.0), 0.0)
        bits = (np.where(uses_left, mask[:, left], 0).astype(np.int64)
                | np.where(uses_right, mask[:, right], 0).astype(np.int64))
        out[:, MASK] = bits.astype(float)
        set_bit(out[:, MASK], ~good, BIT_REGRID_MASKED)
        out[:, FLUX] = np.where(good | np.isfinite(out[:, FLUX]), out[:, FLUX], 1.0)
        return out

    def __sklearn_tags__(self):
        return spectra_tags(super().__sklearn_tags__())
