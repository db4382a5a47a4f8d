"""Read apVisit files: one visit's spectrum, chip by chip, in the observed frame.

Layout (DR16/DR17, reduction r13 and later; APOGEE data model ``apVisit``): HDUs 1-4 hold flux,
error, APOGEE_PIXMASK and wavelength, each one row per chip (3 x 4096 pixels; the rows run red
to blue and the wavelengths within a row decrease). The wavelengths are vacuum, in the observed
(topocentric) frame; the primary header's VRAD is the star's topocentric radial velocity, so the
rest-frame wavelength is ``wavelength / (1 + VRAD / c)`` (VHELIO - BC when VRAD is absent).
Resampling onto the apStar grid is preprocessing and lives in :mod:`skcannon.data.products`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skcannon.apogee.constants import (
    APVISIT_CHIP_PIXELS,
    APVISIT_HDU_ERROR,
    APVISIT_HDU_FLUX,
    APVISIT_HDU_PIXMASK,
    APVISIT_HDU_WAVELENGTH,
    APVISIT_N_CHIPS,
    SPEED_OF_LIGHT_KMS,
)
from skcannon.apogee.fits_size import (
    HDULayout,
    card_text,
    check_fits_length,
    image_array,
    read_file_bytes,
)
from skcannon.apogee.reader import apogee_id_from_name
from skcannon.errors import BadFileError


@dataclass(frozen=True)
class ApVisitSpectrum:
    """One visit of one star, as the apVisit file holds it.

    Attributes
    ----------
    apogee_id, telescope : str
    plate, mjd, fiber : int
    snr : float  from the header (NaN when absent)
    vrad : float  topocentric radial velocity, km/s
    wavelength : ndarray, shape (3, 4096)  observed-frame vacuum wavelength, Angstrom
    flux, error : ndarray, shape (3, 4096)
    pixmask : ndarray of int64, shape (3, 4096)  APOGEE_PIXMASK
    path, sha256 : str
    """

    apogee_id: str
    telescope: str
    plate: int
    mjd: int
    fiber: int
    snr: float
    vrad: float
    wavelength: np.ndarray
    flux: np.ndarray
    error: np.ndarray
    pixmask: np.ndarray
    path: str = ""
    sha256: str = ""

    @property
    def rest_wavelength(self) -> np.ndarray:
        """Rest-frame wavelength, shape (3, 4096): the observed one divided by 1 + VRAD/c."""
        return self.wavelength / (1.0 + self.vrad / SPEED_OF_LIGHT_KMS)


def _radial_velocity(primary, name: str) -> float:
    vrad = card_text(primary, "VRAD")
    if isinstance(vrad, int | float) and np.isfinite(vrad):
        return float(vrad)
    vhelio, bc = card_text(primary, "VHELIO"), card_text(primary, "BC")
    if all(isinstance(v, int | float) and np.isfinite(v) for v in (vhelio, bc)):
        return float(vhelio - bc)
    raise BadFileError(name, "header has no VRAD (nor VHELIO and BC): the visit cannot be "
                             "shifted to its rest frame")


def parse_apvisit(data: bytes, path: str | Path, *, layout: list[HDULayout] | None = None,
                  digest: bool = True) -> ApVisitSpectrum:
    """An :class:`ApVisitSpectrum` from the bytes of the apVisit file named ``path``
    (``layout``: its :func:`hdu_layout`, when already parsed; its SHA-256 recorded unless
    ``digest`` is False).

    Raises
    ------
    BadFileError
        Naming the file: not FITS, truncated, not the apVisit layout (HDUs 1-4 of 3 x 4096),
        wavelengths not finite and monotonic per chip, or no radial velocity.
    """
    name = str(path)
    layout = check_fits_length(data, name, layout)
    expected = (APVISIT_N_CHIPS, APVISIT_CHIP_PIXELS)
    if len(layout) <= APVISIT_HDU_WAVELENGTH or any(
            layout[k].shape != expected for k in range(1, APVISIT_HDU_WAVELENGTH + 1)):
        shapes = [layout[k].shape for k in range(1, min(len(layout), 5))]
        raise BadFileError(name, f"is not an apVisit file (HDUs 1-4 must be {expected[0]} chips "
                                 f"x {expected[1]} pixels; found {shapes})")
    flux, error, pixmask, wavelength = (
        image_array(data, layout[k], name, k) for k in
        (APVISIT_HDU_FLUX, APVISIT_HDU_ERROR, APVISIT_HDU_PIXMASK, APVISIT_HDU_WAVELENGTH))
    if not np.issubdtype(pixmask.dtype, np.integer):
        raise BadFileError(name, f"APOGEE_PIXMASK has dtype {pixmask.dtype}; expected integers")
    steps = np.diff(wavelength, axis=1)
    if not np.all(np.isfinite(wavelength)) or not all(np.all(s > 0) or np.all(s < 0)
                                                       for s in steps):
        raise BadFileError(name, "HDU 4 wavelengths are not finite and monotonic in every chip")
    primary = layout[0]
    snr = card_text(primary, "SNR", np.nan)
    return ApVisitSpectrum(
        apogee_id=str(card_text(primary, "OBJID", "") or "").strip()
        or apogee_id_from_name(Path(name).name),
        telescope=str(card_text(primary, "TELESCOP", "") or "").strip(),
        plate=_integer(card_text(primary, "PLATE")), mjd=_integer(card_text(primary, "MJD5")),
        fiber=_integer(card_text(primary, "FIBERID")),
        snr=float(snr) if isinstance(snr, int | float) else np.nan,
        vrad=_radial_velocity(primary, name), wavelength=wavelength.astype(float),
        flux=flux.astype(float), error=error.astype(float), pixmask=pixmask.astype(np.int64),
        path=name, sha256=hashlib.sha256(data).hexdigest() if digest else "")


def _integer(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def read_apvisit(path: str | Path) -> ApVisitSpectrum:
    """Read an apVisit file (once, as a whole); see :func:`parse_apvisit`."""
    return parse_apvisit(read_file_bytes(path), path)
