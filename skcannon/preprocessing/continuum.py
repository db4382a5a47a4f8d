"""Robust per-chip pseudo-continuum normalization, batched over stars.

For each star and each detector chip, a smooth function (Chebyshev polynomial of degree ``order``
in wavelength scaled to [-1, 1] over the chip, or the sine/cosine series of Ness et al. 2015 with
period 1400 Angstrom) is fitted to the flux at the chip's continuum pixels by inverse-variance
weighted least squares, with iterative sigma clipping of outliers such as residual sky lines.
Flux is divided by it and inverse variance multiplied by its square.

All stars are fitted at once: the basis at the continuum pixels is the same for every star, so
each iteration is one batched normal-equation solve (n_stars small k x k systems).
"""

from __future__ import annotations

import os
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from numpy.polynomial import chebyshev
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skcannon import stats
from skcannon.apogee.grids import CHIP_WAVELENGTH_RANGES, aspcap_dr12_wavelength, chip_of
from skcannon.errors import BadFileError
from skcannon.spectra import (
    BIT_CONTINUUM_NOT_POSITIVE,
    BIT_CONTINUUM_TOO_FEW,
    FLUX,
    IVAR,
    MASK,
    check_spectra,
    set_bit,
    spectra_tags,
)

#: Period of the sine/cosine continuum basis (Ness et al. 2015), Angstrom.
SINCOS_PERIOD = 1400.0


def load_continuum_pixels(path: str | Path) -> np.ndarray:
    """Boolean continuum-pixel mask from an ``.npz`` (key ``pixels_cannon`` or ``trusted``) or
    ``.npy`` file.

    Raises
    ------
    BadFileError
        Naming the file: missing, unreadable, or holding neither layout.
    """
    path = Path(path)
    if not path.is_file():
        raise BadFileError(path, "continuum pixel file not found")
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.ndarray):
            return _as_mask(path, data)
        for key in ("pixels_cannon", "trusted"):
            if key in data.files:
                return _as_mask(path, np.asarray(data[key]))
        files = data.files
    except BadFileError:
        raise
    except Exception as exc:     # numpy/zipfile raise ValueError, OSError, BadZipFile ...
        raise BadFileError(path, f"cannot be read as a continuum pixel file "
                                 f"({type(exc).__name__}: {exc})") from exc
    raise BadFileError(path, f"no 'pixels_cannon' or 'trusted' array (has {files})")


def _as_mask(path: Path, values: np.ndarray) -> np.ndarray:
    if values.ndim != 1 or values.dtype.kind not in "biu":
        raise BadFileError(path, f"continuum pixels must be a 1-D boolean or 0/1 array; got "
                                 f"{values.dtype} of shape {values.shape}")
    return values.astype(bool)


def continuum_basis(wavelength: np.ndarray, chip_range: tuple[float, float], basis: str,
                    order: int) -> np.ndarray:
    """Basis functions at ``wavelength``, shape (n, k)."""
    if basis == "chebyshev":
        lo, hi = chip_range
        return chebyshev.chebvander(2 * (wavelength - lo) / (hi - lo) - 1, order)
    if basis == "sincos":
        phase = 2 * np.pi * np.outer(wavelength, np.arange(1, order + 1)) / SINCOS_PERIOD
        return np.hstack([np.ones((len(wavelength), 1)), np.sin(phase), np.cos(phase)])
    raise ValueError(f"basis must be 'chebyshev' or 'sincos', got {basis!r}")


def masked_location_scale(values: np.ndarray, use: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Per-row median and 1.4826 x MAD of ``values`` where ``use``; (0, 1) for empty rows.

    Returns two arrays of shape (n_rows, 1).
    """
    centre = np.zeros((values.shape[0], 1))
    scale = np.ones((values.shape[0], 1))
    rows = use.any(axis=1)
    if rows.any():
        masked = np.where(use[rows], values[rows], np.nan)
        centre[rows], scale[rows] = stats.robust_location_scale(masked, axis=1, keepdims=True)
    return centre, scale


def fit_continuum_batch(
    flux: np.ndarray, ivar: np.ndarray, design: np.ndarray, clip_sigma: float, max_iter: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted, sigma-clipped least squares of many spectra on one basis.

    Parameters
    ----------
    flux, ivar : ndarray, shape (n_stars, m)
        Flux and inverse variance at the continuum pixels (ivar 0 = unusable).
    design : ndarray, shape (m, k)
        Basis at the continuum pixels.

    Returns
    -------
    coefficients : ndarray, shape (n_stars, k)
    used : ndarray of bool, shape (n_stars, m)
        Pixels used in the final fit (usable and not clipped).
    """
    usable = ivar > 0
    used = usable.copy()
    k = design.shape[1]
    coefficients = np.zeros((flux.shape[0], k))
    for _ in range(max_iter):
        weight = np.where(used, ivar, 0.0)
        normal = np.einsum("nm,mk,ml->nkl", weight, design, design)
        rhs = np.einsum("nm,mk->nk", weight * flux, design)
        # keep unsolvable systems (too few pixels) finite: they are flagged by the caller
        singular = used.sum(axis=1) < k
        normal[singular] = np.eye(k)
        rhs[singular] = 0.0
        normal += np.eye(k) * 1e-12 * np.trace(normal, axis1=1, axis2=2)[:, None, None]
        coefficients = np.linalg.solve(normal, rhs[..., None])[..., 0]
        z = (flux - coefficients @ design.T) * np.sqrt(ivar)
        centre, scale = masked_location_scale(z, used)
        new_used = usable & (np.abs(z - centre) <= clip_sigma * np.fmax(scale, 1.0))
        if np.array_equal(new_used, used):
            break
        used = new_used
    return coefficients, used


class ContinuumNormalizer(TransformerMixin, BaseEstimator):
    """Divide spectra by a robust per-chip pseudo-continuum.

    Parameters
    ----------
    continuum_pixels : path, bool array of shape (n_pixels,), or int index array
        Where the continuum is fitted: e.g. ``cannon_cont_pixels_apogee.npz`` (529 pixels on the
        7214-pixel grid). Required.
    wavelength : array_like, shape (n_pixels,), optional
        Grid of the input spectra (default: the 7214-pixel grid produced by :class:`Regridder`).
    basis : {"chebyshev", "sincos"}
        Chebyshev polynomial of degree ``order``, or 1 + ``order`` sine/cosine pairs.
    order : int
        Polynomial degree, or number of harmonics.
    clip_sigma : float
        Continuum pixels deviating by more than ``clip_sigma`` times max(noise, robust scatter)
        are left out of the next iteration.
    max_iter : int
        Maximum fit-and-clip iterations.
    min_pixels : int or None
        A chip with fewer usable continuum pixels is flagged (all its pixels masked with bit
        CONTINUUM_TOO_FEW_PIXELS); None means 3 x the number of basis functions.

    Attributes
    ----------
    wavelength_ : ndarray, shape (n_pixels,)
    continuum_mask_ : ndarray of bool, shape (n_pixels,)
    chip_index_ : ndarray of int, shape (n_pixels,)  (0 blue, 1 green, 2 red, -1 none)
    """

    _parameter_constraints: dict = {
        "continuum_pixels": [str, os.PathLike, "array-like", None],
        "wavelength": ["array-like", None],
        "basis": [StrOptions({"chebyshev", "sincos"})],
        "order": [Interval(Integral, 0, None, closed="left")],
        "clip_sigma": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "min_pixels": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, continuum_pixels=None, *, wavelength=None, basis: str = "chebyshev",
                 order: int = 3, clip_sigma: float = 3.0, max_iter: int = 5,
                 min_pixels: int | None = None) -> None:
        self.continuum_pixels = continuum_pixels
        self.wavelength = wavelength
        self.basis = basis
        self.order = order
        self.clip_sigma = clip_sigma
        self.max_iter = max_iter
        self.min_pixels = min_pixels

    def fit(self, X=None, y=None):
        """Prepare the per-chip bases (X is only checked)."""
        self._validate_params()
        wavelength = (aspcap_dr12_wavelength() if self.wavelength is None
                      else np.asarray(self.wavelength, dtype=float))
        if self.continuum_pixels is None:
            raise ValueError(
                "ContinuumNormalizer needs continuum_pixels: a path such as "
                "../shared/apogee/continuum/cannon_cont_pixels_apogee.npz, or a boolean array")
        if isinstance(self.continuum_pixels, str | Path):
            mask = load_continuum_pixels(self.continuum_pixels)
        else:
            given = np.asarray(self.continuum_pixels)
            mask = given.astype(bool) if given.dtype == bool else np.isin(
                np.arange(len(wavelength)), given)
        if mask.shape != wavelength.shape:
            raise ValueError(f"continuum pixel mask has {mask.size} pixels but the wavelength "
                             f"grid has {wavelength.size}")
        if X is not None:
            check_spectra(X, len(wavelength))
        self.wavelength_ = wavelength
        self.continuum_mask_ = mask
        self.chip_index_ = chip_of(wavelength)
        self.bases_ = []
        for k, chip_range in enumerate(CHIP_WAVELENGTH_RANGES.values()):
            on_chip = self.chip_index_ == k
            self.bases_.append(continuum_basis(wavelength[on_chip], chip_range, self.basis,
                                               self.order))
        n_basis = self.bases_[0].shape[1]
        self.min_pixels_ = 3 * n_basis if self.min_pixels is None else int(self.min_pixels)
        return self

    def normalize(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Normalized spectra and the fitted continuum.

        Returns
        -------
        X_norm : ndarray, shape (n_stars, 3, n_pixels)
            Normalized flux, scaled ivar, bitmask (flagged chips: flux 1, ivar 0, bit set).
        continuum : ndarray, shape (n_stars, n_pixels)
            The fitted pseudo-continuum (1 on flagged chips).
        """
        check_is_fitted(self, "bases_")
        X = check_spectra(X, len(self.wavelength_))
        out = X.copy()
        flux, ivar = X[:, FLUX], np.where(np.isfinite(X[:, IVAR]) & np.isfinite(X[:, FLUX]),
                                          np.clip(X[:, IVAR], 0, None), 0.0)
        flux = np.where(ivar > 0, flux, 1.0)
        continuum = np.ones_like(flux)
        failed = np.zeros(flux.shape, dtype=bool)
        mask = out[:, MASK]
        for k, basis in enumerate(self.bases_):
            on_chip = self.chip_index_ == k
            chip_cont = self.continuum_mask_[on_chip]
            coef, used = fit_continuum_batch(
                flux[:, on_chip][:, chip_cont], ivar[:, on_chip][:, chip_cont],
                basis[chip_cont], self.clip_sigma, self.max_iter)
            chip_continuum = coef @ basis.T
            too_few = used.sum(axis=1) < self.min_pixels_
            not_positive = ~too_few & ~np.all(chip_continuum > 0, axis=1)
            bad = too_few | not_positive
            chip_continuum[bad] = 1.0
            continuum[:, on_chip] = chip_continuum
            chip_mask = mask[:, on_chip]
            set_bit(chip_mask, np.repeat(too_few[:, None], on_chip.sum(), 1),
                    BIT_CONTINUUM_TOO_FEW)
            set_bit(chip_mask, np.repeat(not_positive[:, None], on_chip.sum(), 1),
                    BIT_CONTINUUM_NOT_POSITIVE)
            mask[:, on_chip] = chip_mask
            ivar[:, on_chip] = np.where(bad[:, None], 0.0, ivar[:, on_chip])
            failed[:, on_chip] = bad[:, None]
        outside = self.chip_index_ < 0
        ivar[:, outside] = 0.0
        raw = X[:, FLUX]
        keep = np.isfinite(raw) & ~failed & ~outside  # masked pixels keep their (finite) values
        out[:, FLUX] = np.where(keep, raw / continuum, 1.0)
        out[:, IVAR] = ivar * continuum**2
        return out, continuum

    def transform(self, X) -> np.ndarray:
        """Normalized spectra, shape (n_stars, 3, n_pixels); the input is not modified."""
        return self.normalize(X)[0]

    def __sklearn_tags__(self):
        return spectra_tags(super().__sklearn_tags__())
