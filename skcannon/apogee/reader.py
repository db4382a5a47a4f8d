"""Read apStar files into :class:`ApStarSpectrum` objects.

Handles the DR17 layout (HDUs 1-3 are 2-D: row 0 the combined spectrum, then the visits) and the
older single-visit layout (1-D arrays), in float32/int16 as archived or float64/int64 as in some
copies.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from skcannon.apogee.bitmask import DEFAULT_BAD_PIXEL_BITS, bad_pixels
from skcannon.apogee.constants import (
    APSTAR_LOG10_WAVELENGTH_START,
    APSTAR_LOG10_WAVELENGTH_STEP,
    APSTAR_N_PIXELS,
    CHIP_HEADER_KEYS,
    GRID_HEADER_RTOL,
    HDU_ERROR,
    HDU_FLUX,
    HDU_PIXMASK,
)
from skcannon.apogee.fits_size import (
    HDULayout,
    card_text,
    check_fits_length,
    image_row,
    read_file_bytes,
)
from skcannon.errors import BadFileError
from skcannon.spectra import stack_spectra


@dataclass(frozen=True)
class ApStarSpectrum:
    """The combined spectrum of one star from an apStar file.

    Attributes
    ----------
    apogee_id, field, telescope : str
        Identity of the star (telescope from the header, else from the archive path; "" when
        neither says).
    snr : float
        Median S/N per pixel from the header (NaN when absent).
    wavelength : ndarray, shape (8575,)
        Vacuum wavelength in Angstrom, from CRVAL1/CDELT1 (log10 grid).
    flux, error : ndarray, shape (8575,)
        Combined flux and its 1-sigma uncertainty, as stored.
    pixmask : ndarray of int64, shape (8575,)
        APOGEE_PIXMASK of the combined spectrum.
    ivar : ndarray, shape (8575,)
        Inverse variance, 0 where the pixel is bad (masked bit, non-finite or non-positive error,
        non-finite flux).
    chip_ranges : dict of str -> (int, int)
        First and last pixel (inclusive) of each chip from the header (BMIN..RMAX), if present.
    starflag : int
        STARFLAG from the header (0 when absent).
    nvisits : int
        NVISITS from the header (0 when absent).
    path : str
        File the spectrum was read from.
    sha256 : str
        SHA-256 of the file's bytes (provenance without reading the file again).
    """

    apogee_id: str
    field: str
    telescope: str
    snr: float
    wavelength: np.ndarray
    flux: np.ndarray
    error: np.ndarray
    pixmask: np.ndarray
    ivar: np.ndarray
    chip_ranges: dict[str, tuple[int, int]] = field(default_factory=dict)
    starflag: int = 0
    nvisits: int = 0
    path: str = ""
    sha256: str = ""

    @property
    def good(self) -> np.ndarray:
        """Boolean array, True where the pixel is usable (``ivar > 0``)."""
        return self.ivar > 0

    @property
    def bad_fraction(self) -> float:
        """Fraction of pixels that are not usable."""
        return float(np.mean(~self.good))


def apogee_id_from_name(name: str) -> str:
    """The 2MASS-style APOGEE_ID in a file name (``apStar-dr17-2M...fits``,
    ``aspcapStar-r6-l30e.2-2M...fits``), or the name's stem when there is none."""
    import re

    found = re.search(r"(2M\d{8}[+-]\d{7})", name)
    return found.group(1) if found else Path(name).stem


def stack_apstar(spectra) -> np.ndarray:
    """The spectra array (n_stars, 3, 8575) of read apStar spectra (see skcannon.spectra).

    Parameters
    ----------
    spectra : sequence of ApStarSpectrum
        Spectra from :func:`read_apstar`, one per star.

    Returns
    -------
    X : ndarray of shape (n_stars, 3, 8575)
        Channels FLUX, IVAR and MASK (APOGEE_PIXMASK as float), stars in input order; see
        :func:`skcannon.spectra.stack_spectra`.

    Raises
    ------
    ValueError
        The spectra differ in length.
    """
    return stack_spectra([s.flux for s in spectra], [s.ivar for s in spectra],
                         pixmask=[s.pixmask for s in spectra])


def log10_wavelength_grid(crval1: float, cdelt1: float, n_pixels: int) -> np.ndarray:
    """Wavelength in Angstrom of a log10-linear grid (pixel 0 at ``crval1``)."""
    return 10.0 ** (crval1 + cdelt1 * np.arange(n_pixels))


@functools.lru_cache(maxsize=8)
def _shared_grid(crval1: float, cdelt1: float, n_pixels: int) -> np.ndarray:
    """:func:`log10_wavelength_grid`, computed once per header values and shared by every file
    that has them (read-only: a reader that changed it would change every file's grid)."""
    grid = log10_wavelength_grid(crval1, cdelt1, n_pixels)
    grid.flags.writeable = False
    return grid


def _close(value: float, reference: float) -> bool:
    """``np.isclose(value, reference, rtol=GRID_HEADER_RTOL, atol=0)`` for two floats."""
    return abs(value - reference) <= GRID_HEADER_RTOL * abs(reference)


def apstar_grid_from_header(name: str, crval1, cdelt1, n_pixels: int) -> np.ndarray:
    """The wavelength grid (Angstrom) of a file on the apStar grid, checked.

    Every later step (regridding, continuum pixels, the models) assumes the standard apStar grid,
    so a header that puts the pixels elsewhere is refused rather than silently misread.

    Raises
    ------
    BadFileError
        Naming ``name``: CRVAL1/CDELT1 missing, not numbers, or not the apStar grid's
        (4.179, 6e-6 in log10 Angstrom) within :data:`GRID_HEADER_RTOL`; or the wrong length.
    """
    if crval1 is None or cdelt1 is None:
        raise BadFileError(name, "header has no CRVAL1/CDELT1: cannot build the wavelength grid")
    try:
        start, step = float(crval1), float(cdelt1)
    except (TypeError, ValueError):
        raise BadFileError(name, f"CRVAL1/CDELT1 are not numbers ({crval1!r}, {cdelt1!r})"
                           ) from None
    if not (_close(start, APSTAR_LOG10_WAVELENGTH_START)
            and _close(step, APSTAR_LOG10_WAVELENGTH_STEP)):
        raise BadFileError(name, f"wavelength grid CRVAL1={start:g}, CDELT1={step:g} is not the "
                                 f"apStar grid (CRVAL1={APSTAR_LOG10_WAVELENGTH_START}, "
                                 f"CDELT1={APSTAR_LOG10_WAVELENGTH_STEP:g}, log10 Angstrom)")
    if n_pixels != APSTAR_N_PIXELS:
        raise BadFileError(name, f"has {n_pixels} pixels; expected {APSTAR_N_PIXELS}")
    return _shared_grid(start, step, n_pixels)


def inverse_variance(
    flux: np.ndarray, error: np.ndarray, pixmask: np.ndarray,
    *, bad_bits: Iterable[int] = DEFAULT_BAD_PIXEL_BITS,
) -> np.ndarray:
    """Inverse variance with bad pixels set to 0.

    A pixel is bad if any of ``bad_bits`` is set, or its flux is not finite, or its error is not
    finite or not positive. Arrays of any (common) shape; inputs are not modified.

    Parameters
    ----------
    flux : array_like, any shape, e.g. (n_pixels,) or (n_stars, n_pixels)
        Flux.
    error : array_like, the shape of ``flux`` (or broadcastable with it)
        1-sigma uncertainty of the flux.
    pixmask : array_like of int, the shape of ``flux`` (or broadcastable with it)
        APOGEE_PIXMASK values.
    bad_bits : iterable of int, default=DEFAULT_BAD_PIXEL_BITS
        APOGEE_PIXMASK bits that make a pixel bad.

    Returns
    -------
    ndarray of float
        ``1 / error**2`` where the pixel is usable, 0 elsewhere; the broadcast shape of
        ``flux`` and ``error``.

    Raises
    ------
    ValueError
        The arrays' shapes do not broadcast.
    """
    flux = np.asarray(flux, dtype=float)
    error = np.asarray(error, dtype=float)
    usable = (np.isfinite(flux) & np.isfinite(error) & (error > 0)
              & ~bad_pixels(pixmask, bits=bad_bits))
    ivar = np.zeros(np.broadcast_shapes(flux.shape, error.shape), dtype=float)
    np.divide(1.0, error**2, out=ivar, where=usable)
    return ivar


def _combined_row(array: np.ndarray, path: str, hdu: int) -> np.ndarray:
    if array is None:
        raise BadFileError(path, f"HDU {hdu} holds no data")
    if array.ndim == 2:
        return array[0]
    if array.ndim == 1:
        return array
    raise BadFileError(path, f"HDU {hdu} has {array.ndim} dimensions; expected 1 or 2")


def read_apstar(
    path: str | Path,
    *,
    bad_bits: Iterable[int] = DEFAULT_BAD_PIXEL_BITS,
    telescope: str | None = None,
    source: str | Path | None = None,
) -> ApStarSpectrum:
    """Read the combined spectrum of an apStar file (the file is read once, as a whole).

    Parameters
    ----------
    path : str or Path
        The apStar FITS file.
    bad_bits : iterable of int, default=DEFAULT_BAD_PIXEL_BITS
        APOGEE_PIXMASK bits that make a pixel unusable (inverse variance 0).
    telescope : str, default=None
        Telescope to record when the header has no TELESCOP key (DR17 files do not); by default
        the name of the directory two levels up in the archive layout
        (``stars/{telescope}/{field}/file``), and "" (unknown) for a file outside it.
    source : str or Path, default=None
        The file these bytes stand for, when ``path`` is a temporary copy (a download in
        progress): recorded as the spectrum's path and used for the archive-layout fallbacks.

    Returns
    -------
    ApStarSpectrum
        Row 0 (the combined spectrum) of HDUs 1-3 as float64 flux and error and int64 pixmask,
        each of shape (8575,), the wavelength grid from the header, the inverse variance (0 at
        bad pixels), identity, SNR, STARFLAG, NVISITS and chip ranges from the header, and the
        SHA-256 of the file's bytes.

    Raises
    ------
    BadFileError
        The file is missing, not FITS, truncated, lacks HDU 1-3, or has arrays of the wrong length.
    """
    path = Path(path)
    return parse_apstar(read_file_bytes(path), Path(source) if source is not None else path,
                        bad_bits=bad_bits, telescope=telescope)


def _header_values(primary: HDULayout, flux: HDULayout, path: Path,
                   telescope: str | None) -> dict:
    """Everything parse_apstar needs from the headers, as plain values."""
    chips = {}
    for chip, (lo, hi) in CHIP_HEADER_KEYS.items():
        first, last = card_text(primary, lo), card_text(primary, hi)
        if isinstance(first, int) and isinstance(last, int):
            chips[chip] = (first, last)
    snr = card_text(primary, "SNR", np.nan)
    return {
        "crval1": card_text(flux, "CRVAL1", card_text(primary, "CRVAL1")),
        "cdelt1": card_text(flux, "CDELT1", card_text(primary, "CDELT1")),
        "nwave": card_text(primary, "NWAVE", APSTAR_N_PIXELS),
        "chips": chips,
        "apogee_id": str(card_text(primary, "OBJID", "")).strip()
        or apogee_id_from_name(path.name),
        "field": str(card_text(primary, "FIELD", path.parent.name)).strip(),
        "telescope": str(card_text(primary, "TELESCOP", "") or telescope
                         or _telescope_directory(path)).strip(),
        "snr": float(snr) if isinstance(snr, int | float) else np.nan,
        "starflag": _as_int(card_text(primary, "STARFLAG", 0)),
        "nvisits": _as_int(card_text(primary, "NVISITS", 0)),
    }


def _telescope_directory(path: Path) -> str:
    """The telescope directory of a file in the archive layout (``stars/{telescope}/{field}/
    file``); "" (unknown) for a file elsewhere, whose directories say nothing about it."""
    return path.parent.parent.name if path.parent.parent.parent.name == "stars" else ""


def _as_int(value) -> int:
    return int(value) if isinstance(value, int | float) and np.isfinite(value) else 0


def parse_apstar(
    data: bytes,
    path: str | Path,
    *,
    bad_bits: Iterable[int] = DEFAULT_BAD_PIXEL_BITS,
    telescope: str | None = None,
    layout: list[HDULayout] | None = None,
    digest: bool = True,
) -> ApStarSpectrum:
    """The combined spectrum from the bytes of an apStar file named ``path`` (see
    :func:`read_apstar`; ``layout``: the file's :func:`hdu_layout`, when already parsed); the
    spectrum records the SHA-256 of ``data`` (unless ``digest`` is False: "", which saves ~2 ms
    of a ~5 ms read of a DR17 file where nothing records it, as in a survey).

    The file is parsed directly (:mod:`skcannon.apogee.fits_size`): its headers give every
    HDU's place, and only row 0 of HDUs 1-3 is decoded - several times faster than a general
    FITS reader, thread-safe, and exactly as long as its headers imply or refused."""
    path = Path(path)
    name = str(path)
    layout = check_fits_length(data, name, layout)   # truncation or inserted bytes
    if len(layout) <= HDU_PIXMASK:
        raise BadFileError(name, f"has {len(layout)} HDUs; an apStar file needs HDUs 1-3 "
                                 "(flux, error, APOGEE_PIXMASK)")
    flux, error, pixmask = (image_row(data, layout[hdu], name, hdu)
                            for hdu in (HDU_FLUX, HDU_ERROR, HDU_PIXMASK))
    values = _header_values(layout[0], layout[HDU_FLUX], path, telescope)
    for label, array in (("flux", flux), ("error", error), ("APOGEE_PIXMASK", pixmask)):
        if array.shape != (APSTAR_N_PIXELS,):
            raise BadFileError(
                name, f"{label} has {array.shape[-1]} pixels; expected {APSTAR_N_PIXELS}")
    if not isinstance(values["nwave"], int):
        raise BadFileError(name, f"NWAVE = {values['nwave']!r} is not an integer")
    wavelength = apstar_grid_from_header(name, values["crval1"], values["cdelt1"],
                                         values["nwave"])
    if not np.issubdtype(pixmask.dtype, np.integer):
        raise BadFileError(name, f"APOGEE_PIXMASK has dtype {pixmask.dtype}; expected integers")

    flux = flux.astype(float)
    error = error.astype(float)
    pixmask = pixmask.astype(np.int64)
    return ApStarSpectrum(
        apogee_id=values["apogee_id"], field=values["field"], telescope=values["telescope"],
        snr=values["snr"], wavelength=wavelength, flux=flux, error=error, pixmask=pixmask,
        ivar=inverse_variance(flux, error, pixmask, bad_bits=bad_bits),
        chip_ranges=values["chips"], starflag=values["starflag"], nvisits=values["nvisits"],
        path=name, sha256=hashlib.sha256(data).hexdigest() if digest else "",
    )
