"""Bad-pixel masking: bitmask bits (and invalid values) -> inverse variance 0."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from skcannon.spectra import (
    BIT_BAD_INPUT,
    FLUX,
    IVAR,
    MASK,
    bits_to_mask,
    check_spectra,
    set_bit,
    spectra_tags,
)


class BitmaskMasker(TransformerMixin, BaseEstimator):
    """Set the inverse variance of bad pixels to 0.

    A pixel is bad if any of ``bad_bits`` is set in its bitmask, or its flux or inverse variance is
    not finite, or its inverse variance is negative (the last three also get skcannon's
    BAD_INPUT_VALUE bit, and flux 1 and ivar 0 so no NaN travels on). Masking never unmasks.

    Survey-free: the bits are the survey's own (0..63); :func:`skcannon.apogee.apogee_masker`
    supplies APOGEE's (APOGEE_PIXMASK 0-7 and 12).

    Parameters
    ----------
    bad_bits : sequence of int, default=()
        Bit numbers of the input bitmask that make a pixel unusable. The default masks only
        invalid values.

    Attributes
    ----------
    n_pixels_ : int
        Pixels per spectrum seen in ``fit``.
    """

    _parameter_constraints: dict = {"bad_bits": ["array-like"]}

    def __init__(self, bad_bits: Sequence[int] = ()) -> None:
        self.bad_bits = bad_bits

    def fit(self, X, y=None):
        """Check ``X`` and the bits; learn the pixel count.

        Parameters
        ----------
        X : array_like, shape (n_stars, 3, n_pixels)
        y : None
            Ignored.

        Returns
        -------
        self : BitmaskMasker

        Raises
        ------
        ValueError
            A bit outside 0..63, or ``X`` of the wrong shape.
        """
        self._validate_params()
        X = check_spectra(X)
        bits_to_mask(self.bad_bits)  # validates the bit numbers
        self.n_pixels_ = X.shape[2]
        return self

    def transform(self, X) -> np.ndarray:
        """Masked copy of ``X``; the input is not modified.

        Parameters
        ----------
        X : array_like, shape (n_stars, 3, n_pixels)

        Returns
        -------
        ndarray, shape (n_stars, 3, n_pixels)
        """
        check_is_fitted(self, "n_pixels_")
        X = check_spectra(X, self.n_pixels_).copy()
        flux, ivar, mask = X[:, FLUX], X[:, IVAR], X[:, MASK]
        invalid = ~np.isfinite(flux) | ~np.isfinite(ivar) | (ivar < 0) | ~np.isfinite(mask)
        mask[~np.isfinite(mask)] = 0.0
        set_bit(mask, invalid, BIT_BAD_INPUT)
        flux[invalid] = 1.0
        flagged = (mask.astype(np.int64) & np.int64(bits_to_mask(self.bad_bits))) != 0
        ivar[invalid | flagged] = 0.0
        return X

    def __sklearn_tags__(self):
        return spectra_tags(super().__sklearn_tags__(), allow_nan=True)
