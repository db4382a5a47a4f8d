"""The one representation of spectra that travels through Pipelines.

A batch of spectra is a 3-D float array ``X`` of shape ``(n_stars, 3, n_pixels)`` whose channels
are, in order, flux, inverse variance (0 = masked) and the pixel bitmask (APOGEE_PIXMASK bits
plus skcannon's own flags, stored as exact integers in float64). Row indexing (``X[idx]``, as
``train_test_split``, ``KFold`` and ``cross_val_score`` do) keeps the three channels of a star
together. The wavelength grid is not carried: each transformer knows the grid it produces.
"""

from __future__ import annotations

import numpy as np

#: Channel indices of a spectra array.
FLUX, IVAR, MASK = 0, 1, 2
N_CHANNELS = 3

#: skcannon's own bitmask bits, above APOGEE's (0-14), set by the preprocessing transformers.
SKCANNON_BITS: dict[int, str] = {
    24: "REGRID_MASKED_NEIGHBOUR",   # interpolated from a masked or missing source pixel
    25: "CONTINUUM_TOO_FEW_PIXELS",  # chip had too few usable continuum pixels: chip masked
    26: "CONTINUUM_NOT_POSITIVE",    # fitted continuum <= 0 somewhere on the chip: chip masked
    27: "BAD_INPUT_VALUE",           # non-finite flux/ivar or negative ivar in the input
}
BIT_REGRID_MASKED = 24
BIT_CONTINUUM_TOO_FEW = 25
BIT_CONTINUUM_NOT_POSITIVE = 26
BIT_BAD_INPUT = 27


def stack_spectra(flux: np.ndarray, ivar: np.ndarray, *, pixmask: np.ndarray | None = None
                  ) -> np.ndarray:
    """Stack flux, inverse variance and bitmask into ``X``, shape (n_stars, 3, n_pixels).

    Parameters
    ----------
    flux, ivar : array_like, shape (n_stars, n_pixels) or (n_pixels,)
        Flux and inverse variance (a single spectrum counts as one star).
    pixmask : array_like of int, same shape, default=None
        Bitmask per pixel (zeros if omitted).

    Returns
    -------
    X : ndarray of shape (n_stars, 3, n_pixels)
        Channels FLUX, IVAR and MASK (the bitmask as float).

    Raises
    ------
    ValueError
        The three arrays differ in shape.
    """
    flux = np.atleast_2d(np.asarray(flux, dtype=float))
    ivar = np.atleast_2d(np.asarray(ivar, dtype=float))
    pixmask = np.zeros(flux.shape) if pixmask is None else np.atleast_2d(pixmask)
    if not flux.shape == ivar.shape == pixmask.shape:
        raise ValueError(f"flux {flux.shape}, ivar {ivar.shape} and pixmask {pixmask.shape} "
                         "must have the same shape")
    X = np.empty((flux.shape[0], 3, flux.shape[1]))
    X[:, FLUX], X[:, IVAR], X[:, MASK] = flux, ivar, pixmask
    return X


def check_spectra(X: object, n_pixels: int | None = None, name: str = "X") -> np.ndarray:
    """Validate a spectra array; return it as float64 (a view when possible).

    Raises ValueError naming the problem: wrong number of dimensions or channels, wrong number of
    pixels (with the expected number).
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 3 or X.shape[1] != N_CHANNELS:
        raise ValueError(
            f"{name} must have shape (n_stars, 3, n_pixels) with channels flux, ivar, bitmask "
            f"(see skcannon.spectra.stack_spectra); got shape {X.shape}")
    if n_pixels is not None and X.shape[2] != n_pixels:
        raise ValueError(f"{name} has {X.shape[2]} pixels per spectrum; this step expects "
                         f"{n_pixels} (is the input on the right wavelength grid?)")
    return X


def set_bit(mask: np.ndarray, where: np.ndarray, bit: int) -> None:
    """Set ``bit`` in the float-stored bitmask ``mask`` where ``where`` is True (in place)."""
    as_int = mask[where].astype(np.int64)
    mask[where] = (as_int | np.int64(1 << bit)).astype(float)


def has_bit(mask: np.ndarray, bit: int) -> np.ndarray:
    """True where ``bit`` is set in the float-stored bitmask ``mask``."""
    return (mask.astype(np.int64) >> bit) & 1 == 1


def spectra_tags(tags, *, allow_nan: bool = False):
    """scikit-learn tags of an estimator taking (n_stars, 3, n_pixels) spectra arrays as ``X``:
    3-D input, never 2-D (shared by the transformers, the regressor and the network input)."""
    tags.input_tags.two_d_array = False
    tags.input_tags.three_d_array = True
    tags.input_tags.allow_nan = allow_nan
    return tags


#: Bit numbers a bitmask stored as int64 can hold.
N_MASK_BITS = 64


def bits_to_mask(bits) -> int:
    """Integer with the given bit numbers set (survey-free: any survey's bit numbers).

    Parameters
    ----------
    bits : iterable of int
        Bit numbers, each in 0..63.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        A negative bit or one beyond 63.
    """
    value = 0
    for bit in bits:
        bit = int(bit)
        if not 0 <= bit < N_MASK_BITS:
            raise ValueError(f"bitmask bit must be in 0..{N_MASK_BITS - 1}, got {bit}")
        value |= 1 << bit
    return value
