"""Robust per-region pseudo-continuum normalization, batched over stars.

For each star and each wavelength region (e.g. a detector chip; ``regions`` of
:class:`ContinuumNormalizer`), a smooth function from the registry of
:mod:`skcannon.preprocessing.bases` (a Chebyshev polynomial of degree ``order`` in wavelength
scaled to [-1, 1] over the region, the sine/cosine series of Ness et al. 2015, or any registered
basis) is fitted to the flux at the region's continuum pixels by inverse-variance weighted least
squares, with iterative sigma clipping of outliers such as residual sky lines. Flux is divided by
it and inverse variance multiplied by its square.

All stars are fitted at once: the basis at the continuum pixels is the same for every star, so
each iteration is one batched normal-equation solve (n_stars small k x k systems).
"""

from __future__ import annotations

import os
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, InvalidParameterError
from sklearn.utils.validation import check_is_fitted

from skcannon import stats
from skcannon.errors import BadFileError
from skcannon.preprocessing.bases import CONTINUUM_BASES, continuum_basis
from skcannon.preprocessing.regions import region_of, region_ranges
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


def load_continuum_pixels(path: str | Path) -> np.ndarray:
    """Boolean continuum-pixel mask from an ``.npz`` (key ``pixels_cannon`` or ``trusted``) or
    ``.npy`` file.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    ndarray of bool, shape (n_pixels,)

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


def masked_location_scale(values: np.ndarray, use: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Per-row median and 1.4826 x MAD of ``values`` where ``use``; (0, 1) for empty rows.

    The medians are those of :func:`skcannon.stats.robust_location_scale` (NaN ignored),
    taken from one sort per row instead of ``nanmedian``'s per-row partitions (several times
    faster on many short rows).

    Returns two arrays of shape (n_rows, 1).
    """
    values = np.asarray(values, dtype=float)
    use = use & ~np.isnan(values)
    count = use.sum(axis=1)
    rows = count > 0
    centre = np.where(rows, _masked_median(values, use, count), 0.0)[:, None]
    spread = _masked_median(np.abs(values - centre), use, count)
    scale = np.where(rows, stats.MAD_TO_SIGMA * spread, 1.0)[:, None]
    return centre, scale


def _masked_median(values: np.ndarray, use: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Median of each row's ``values`` where ``use`` (``count`` of them; any value for empty
    rows): the mean of the two middle values of the sorted row, as ``np.median`` takes it."""
    ordered = np.sort(np.where(use, values, np.inf), axis=1)
    rows = np.arange(len(values))
    low, high = np.maximum((count - 1) // 2, 0), np.maximum(count // 2, 0)
    low, high = np.minimum(low, values.shape[1] - 1), np.minimum(high, values.shape[1] - 1)
    with np.errstate(invalid="ignore"):
        return (ordered[rows, low] + ordered[rows, high]) / 2


def fit_continuum_batch(
    flux: np.ndarray, ivar: np.ndarray, design: np.ndarray, clip_sigma: float, max_iter: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted, sigma-clipped least squares of many spectra on one basis.

    Parameters
    ----------
    flux, ivar : ndarray, shape (n_stars, m)
        Flux and inverse variance at the continuum pixels (ivar 0 = unusable).
    design : ndarray, shape (m, k) or (n_groups, m, k)
        Basis at the continuum pixels: the same for every row, or one per group of
        ``n_stars // n_groups`` consecutive rows (the rows of several regions fitted at once,
        shorter regions padded with ivar 0).

    Returns
    -------
    coefficients : ndarray, shape (n_stars, k)
    used : ndarray of bool, shape (n_stars, m)
        Pixels used in the final fit (usable and not clipped).
    """
    design = design[None] if design.ndim == 2 else design
    groups, m, k = design.shape
    outer = (design[:, :, :, None] * design[:, :, None, :]).reshape(groups, m, k * k)
    usable = ivar > 0
    used = usable.copy()
    coefficients = np.zeros((flux.shape[0], k))
    for _ in range(max_iter):
        weight = np.where(used, ivar, 0.0).reshape(groups, -1, m)
        # per group, two matrix products (BLAS): sum_m w x_k x_l and sum_m w f x_k
        normal = np.matmul(weight, outer).reshape(-1, k, k)
        rhs = np.matmul(weight * flux.reshape(groups, -1, m), design).reshape(-1, k)
        # keep unsolvable systems (too few pixels) finite: they are flagged by the caller
        singular = used.sum(axis=1) < k
        normal[singular] = np.eye(k)
        rhs[singular] = 0.0
        normal += np.eye(k) * 1e-12 * np.trace(normal, axis1=1, axis2=2)[:, None, None]
        coefficients = np.linalg.solve(normal, rhs[..., None])[..., 0]
        model = np.matmul(coefficients.reshape(groups, -1, k),
                          design.transpose(0, 2, 1)).reshape(-1, m)
        z = (flux - model) * np.sqrt(ivar)
        centre, scale = masked_location_scale(z, used)
        new_used = usable & (np.abs(z - centre) <= clip_sigma * np.fmax(scale, 1.0))
        if np.array_equal(new_used, used):
            break
        used = new_used
    return coefficients, used


def _continuum_mask(continuum_pixels, wavelength: np.ndarray) -> np.ndarray:
    """``continuum_pixels`` (a file, a boolean mask or indices) as a mask on ``wavelength``."""
    if continuum_pixels is None:
        raise ValueError(
            "ContinuumNormalizer needs continuum_pixels: a path such as "
            "../shared/apogee/continuum/cannon_cont_pixels_apogee.npz, or a boolean array")
    if isinstance(continuum_pixels, str | Path):
        mask = load_continuum_pixels(continuum_pixels)
    else:
        given = np.asarray(continuum_pixels)
        mask = given.astype(bool) if given.dtype == bool else np.isin(
            np.arange(len(wavelength)), given)
    if mask.shape != wavelength.shape:
        raise ValueError(f"continuum pixel mask has {mask.size} pixels but the wavelength "
                         f"grid has {wavelength.size}")
    return mask


class ContinuumNormalizer(TransformerMixin, BaseEstimator):
    """Divide spectra by a robust per-region pseudo-continuum.

    Survey-free: the grid, the regions and the continuum pixels are parameters.
    :func:`skcannon.apogee.apogee_normalizer` supplies APOGEE's (the 7214-pixel DR12 grid and its
    three detector chips).

    Parameters
    ----------
    continuum_pixels : path, bool array of shape (n_pixels,), or int index array
        Where the continuum is fitted: e.g. ``cannon_cont_pixels_apogee.npz`` (529 pixels on the
        7214-pixel grid). Required.
    wavelength : array_like, shape (n_pixels,)
        Wavelength grid of the input spectra, Angstrom. Required (None is refused in ``fit``).
    regions : array_like of shape (n_regions, 2), or None, default=None
        ``(start, stop)`` wavelength ranges (increasing, not overlapping), each normalized on its
        own, e.g. detector chips; a pixel belongs to a region when start <= wavelength < stop.
        Pixels outside every region are masked (ivar 0) with flux 1. None: one region spanning
        the whole grid.
    basis : str, default="chebyshev"
        A name in :data:`skcannon.preprocessing.bases.CONTINUUM_BASES`: "chebyshev" (polynomial of
        degree ``order``), "sincos" (1 + ``order`` sine/cosine pairs) or any registered basis.
    order : int, default=3
        Polynomial degree, or number of harmonics.
    clip_sigma : float, default=3.0
        Continuum pixels deviating by more than ``clip_sigma`` times max(noise, robust scatter)
        are left out of the next iteration.
    max_iter : int, default=5
        Maximum fit-and-clip iterations.
    min_pixels : int or None, default=None
        A region with fewer usable continuum pixels is flagged (all its pixels masked with bit
        CONTINUUM_TOO_FEW_PIXELS); None means 3 x the number of basis functions.

    Attributes
    ----------
    wavelength_ : ndarray, shape (n_pixels,)
        The input grid.
    continuum_mask_ : ndarray of bool, shape (n_pixels,)
        The continuum pixels.
    regions_ : ndarray, shape (n_regions, 2)
        The regions' ``(start, stop)`` (for ``regions=None``, the grid's min and max).
    region_index_ : ndarray of int, shape (n_pixels,)
        Region of each pixel (-1: outside every region).
    bases_ : list of ndarray, shape (n_region_pixels, k)
        The basis on each region's pixels.
    min_pixels_ : int
        The resolved ``min_pixels``.
    """

    _parameter_constraints: dict = {
        "continuum_pixels": [str, os.PathLike, "array-like", None],
        "wavelength": ["array-like", None],
        "regions": ["array-like", None],
        "basis": [str],
        "order": [Interval(Integral, 0, None, closed="left")],
        "clip_sigma": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "min_pixels": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, continuum_pixels, *, wavelength, regions=None, basis: str = "chebyshev",
                 order: int = 3, clip_sigma: float = 3.0, max_iter: int = 5,
                 min_pixels: int | None = None) -> None:
        self.continuum_pixels = continuum_pixels
        self.wavelength = wavelength
        self.regions = regions
        self.basis = basis
        self.order = order
        self.clip_sigma = clip_sigma
        self.max_iter = max_iter
        self.min_pixels = min_pixels

    def _validated_wavelength(self) -> np.ndarray:
        """Validate the parameters (the basis against the registry as it is now); the grid."""
        self._validate_params()
        if self.basis not in CONTINUUM_BASES:      # registered at any time before fit
            raise InvalidParameterError(
                f"The 'basis' parameter of ContinuumNormalizer must be a str among "
                f"{sorted(CONTINUUM_BASES)} (skcannon.preprocessing.bases). Got "
                f"{self.basis!r} instead.")
        if self.wavelength is None:
            raise ValueError("ContinuumNormalizer needs wavelength: the grid of the input "
                             "spectra, shape (n_pixels,) (skcannon.apogee.apogee_normalizer "
                             "supplies APOGEE's)")
        wavelength = np.asarray(self.wavelength, dtype=float)
        if wavelength.ndim != 1 or wavelength.size == 0 or not np.isfinite(wavelength).all():
            raise ValueError(f"wavelength must be a finite 1-D grid; got shape "
                             f"{wavelength.shape}")
        return wavelength

    def fit(self, X=None, y=None):
        """Prepare the per-region bases.

        Parameters
        ----------
        X : array_like of shape (n_stars, 3, n_pixels), default=None
            Only checked against the grid.
        y : None
            Ignored.

        Returns
        -------
        self : ContinuumNormalizer
        """
        wavelength = self._validated_wavelength()
        mask = _continuum_mask(self.continuum_pixels, wavelength)
        ranges = region_ranges(self.regions, wavelength)
        if X is not None:
            check_spectra(X, len(wavelength))
        self.wavelength_ = wavelength
        self.continuum_mask_ = mask
        self.regions_ = ranges
        self.region_index_ = region_of(wavelength, ranges, whole_grid=self.regions is None)
        self.bases_ = [
            continuum_basis(wavelength[self.region_index_ == k], (float(lo), float(hi)),
                            self.basis, self.order)
            for k, (lo, hi) in enumerate(ranges)]
        n_basis = self.bases_[0].shape[1]
        self.min_pixels_ = 3 * n_basis if self.min_pixels is None else int(self.min_pixels)
        return self

    def normalize(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Normalized spectra and the fitted continuum.

        Parameters
        ----------
        X : array_like, shape (n_stars, 3, n_pixels)
            Spectra on ``wavelength_`` (not modified).

        Returns
        -------
        X_norm : ndarray, shape (n_stars, 3, n_pixels)
            Normalized flux, scaled ivar, bitmask (flagged regions and pixels outside every
            region: flux 1, ivar 0; flagged regions also get their bit).
        continuum : ndarray, shape (n_stars, n_pixels)
            The fitted pseudo-continuum (1 on flagged regions and outside every region).
        """
        check_is_fitted(self, "bases_")
        X = check_spectra(X, len(self.wavelength_))
        out = np.empty_like(X)                  # flux and ivar are all written below
        out[:, MASK] = X[:, MASK]
        raw = X[:, FLUX]
        finite = np.isfinite(raw)
        ivar = np.maximum(X[:, IVAR], 0.0)      # NaN stays NaN, set to 0 with the infinities
        ivar[~(np.isfinite(ivar) & finite)] = 0.0
        coef, used_count = self._fit_regions(raw, ivar)
        n = len(X)
        # every region's continuum at once: coefficients (n, R k) x the bases stacked (R k, P)
        continuum = coef.transpose(1, 0, 2).reshape(n, -1) @ self._stacked_bases()
        too_few = used_count < self.min_pixels_                             # (n, R)
        not_positive = ~too_few & self._region_not_positive(continuum)
        bad = too_few | not_positive
        outside = self.region_index_ < 0

        def per_pixel(per_region):         # (n, R) -> (n, P); False outside every region
            return np.column_stack([per_region, np.zeros(n, bool)])[:, self.region_index_]

        mask = out[:, MASK]
        for flags, bit in ((too_few, BIT_CONTINUUM_TOO_FEW),
                           (not_positive, BIT_CONTINUUM_NOT_POSITIVE)):
            if flags.any():                                  # rare: skip the pass otherwise
                set_bit(mask, per_pixel(flags), bit)
        if bad.any() or outside.any():
            unused = per_pixel(bad) | outside
            continuum[unused] = 1.0
            finite &= ~unused
            ivar[unused] = 0.0
        flux = out[:, FLUX]
        np.divide(raw, continuum, out=flux)
        flux[~finite] = 1.0
        ivar *= np.square(continuum)            # exactly continuum**2, as before
        out[:, IVAR] = ivar
        return out, continuum

    def _region_not_positive(self, continuum: np.ndarray) -> np.ndarray:
        """Stars whose continuum is not positive (or not finite) somewhere in a region,
        shape (n_stars, R)."""
        in_region = (self.region_index_[:, None] == np.arange(len(self.bases_))).astype(float)
        return (~(continuum > 0)).astype(float) @ in_region > 0

    def _stacked_bases(self) -> np.ndarray:
        """Every region's basis over the whole grid, stacked: (R k, n_pixels), zero outside
        its region."""
        k = self.bases_[0].shape[1]
        stacked = np.zeros((len(self.bases_) * k, len(self.region_index_)))
        for r, basis in enumerate(self.bases_):
            stacked[r * k:(r + 1) * k, self.region_index_ == r] = basis.T
        return stacked

    def _fit_regions(self, flux: np.ndarray, ivar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Continuum coefficients (R, n_stars, k) of every region and the pixels used per
        star and region (n_stars, R), from the continuum pixels of ``flux`` (taken as 1 where
        ``ivar`` is not positive) and ``ivar``: all regions' rows fitted in one batch
        (:func:`fit_continuum_batch`, each row with its region's basis, shorter regions
        padded with unusable pixels)."""
        pixels = [np.flatnonzero(self.continuum_mask_ & (self.region_index_ == k))
                  for k in range(len(self.bases_))]
        n, width = flux.shape[0], max([len(p) for p in pixels] + [1])
        k = self.bases_[0].shape[1]
        rows_flux = np.ones((len(pixels), n, width))
        rows_ivar = np.zeros((len(pixels), n, width))
        design = np.zeros((len(pixels), width, k))
        for r, (cont, basis) in enumerate(zip(pixels, self.bases_, strict=True)):
            rows_ivar[r, :, : len(cont)] = ivar[:, cont]
            rows_flux[r, :, : len(cont)] = np.where(rows_ivar[r, :, : len(cont)] > 0,
                                                    flux[:, cont], 1.0)
            design[r, : len(cont)] = basis[self.continuum_mask_[self.region_index_ == r]]
        coef, used = fit_continuum_batch(rows_flux.reshape(-1, width),
                                         rows_ivar.reshape(-1, width),
                                         design, self.clip_sigma, self.max_iter)
        return coef.reshape(len(pixels), n, k), used.sum(axis=1).reshape(len(pixels), n).T

    def transform(self, X) -> np.ndarray:
        """Normalized spectra (see :meth:`normalize`); the input is not modified.

        Parameters
        ----------
        X : array_like, shape (n_stars, 3, n_pixels)

        Returns
        -------
        ndarray, shape (n_stars, 3, n_pixels)
        """
        return self.normalize(X)[0]

    def __sklearn_tags__(self):
        return spectra_tags(super().__sklearn_tags__())
