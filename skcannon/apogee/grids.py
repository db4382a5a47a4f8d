"""Wavelength grids and detector chips, defined once.

* The apStar grid: log10-linear, 8575 pixels from 10**4.179 Angstrom in steps of 6e-6 dex
  (header keys CRVAL1/CDELT1 of DR17 apStar files).
* The DR11/DR12 aspcapStar grid (7214 pixels) on which the Cannon continuum pixels of Ness et al.
  (2015) are defined: the apStar pixels [322:3242] + [3648:6048] + [6412:8306] (gaps removed).
  Checked against ``apogee_wavelength.npz`` of The_Payne to 3e-13 relative.
* Chips: the blue, green and red detectors. Their wavelength ranges are the union over DR17 files
  of the header ranges BMIN..BMAX, GMIN..GMAX, RMIN..RMAX (e.g. 197..3323, 3533..6129,
  6291..8381) converted with the apStar grid, rounded outward to 10 Angstrom and split in the
  gaps: blue 15100-15830, green 15830-16450, red 16450-17000 Angstrom (vacuum).
"""

from __future__ import annotations

import numpy as np

from skcannon.apogee.constants import (
    APSTAR_LOG10_WAVELENGTH_START,
    APSTAR_LOG10_WAVELENGTH_STEP,
    APSTAR_N_PIXELS,
)

#: apStar pixel ranges kept in the DR12 aspcapStar (7214-pixel) grid.
ASPCAP_DR12_APSTAR_SLICES = ((322, 3242), (3648, 6048), (6412, 8306))
#: apStar pixel ranges kept in the DR13-DR17 aspcapStar (7514-pixel) grid.
ASPCAP_DR17_APSTAR_SLICES = ((246, 3274), (3585, 6080), (6344, 8335))
#: Wavelength range (Angstrom, vacuum) of each detector chip.
CHIP_WAVELENGTH_RANGES: dict[str, tuple[float, float]] = {
    "blue": (15100.0, 15830.0),
    "green": (15830.0, 16450.0),
    "red": (16450.0, 17000.0),
}


def apstar_wavelength() -> np.ndarray:
    """Wavelength (Angstrom) of the 8575 apStar pixels, shape (8575,)."""
    return 10.0 ** (APSTAR_LOG10_WAVELENGTH_START
                    + APSTAR_LOG10_WAVELENGTH_STEP * np.arange(APSTAR_N_PIXELS))


def _slices_to_index(slices) -> np.ndarray:
    return np.concatenate([np.arange(a, b) for a, b in slices])


def aspcap_dr12_wavelength() -> np.ndarray:
    """Wavelength (Angstrom) of the 7214-pixel DR12 aspcapStar grid (the continuum-pixel grid)."""
    return apstar_wavelength()[_slices_to_index(ASPCAP_DR12_APSTAR_SLICES)]


def aspcap_dr17_wavelength() -> np.ndarray:
    """Wavelength (Angstrom) of the 7514-pixel DR13-DR17 aspcapStar grid."""
    return apstar_wavelength()[_slices_to_index(ASPCAP_DR17_APSTAR_SLICES)]


def chip_of(wavelength: np.ndarray) -> np.ndarray:
    """Chip index (0 blue, 1 green, 2 red; -1 outside every chip) of each wavelength."""
    wavelength = np.asarray(wavelength, dtype=float)
    out = np.full(wavelength.shape, -1, dtype=int)
    for k, (lo, hi) in enumerate(CHIP_WAVELENGTH_RANGES.values()):
        out[(wavelength >= lo) & (wavelength < hi)] = k
    return out
