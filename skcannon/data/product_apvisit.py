"""The ``apVisit`` product: one visit, 3 chips x 4096 pixels with their own observed-frame
wavelengths (:mod:`skcannon.apogee.visit`), resampled in its rest frame onto the apStar grid.

Identified by HDUs 1-4 being images of 3 x 4096.
"""

from __future__ import annotations

import numpy as np

from skcannon.apogee.constants import APVISIT_CHIP_PIXELS, APVISIT_HDU_WAVELENGTH, APVISIT_N_CHIPS
from skcannon.apogee.grids import apstar_wavelength
from skcannon.apogee.reader import inverse_variance
from skcannon.apogee.visit import ApVisitSpectrum, parse_apvisit
from skcannon.data.registry import ProductSpectra, SpectrumFile, register_product
from skcannon.preprocessing import Regridder
from skcannon.spectra import BIT_REGRID_MASKED, MASK, set_bit, stack_spectra

#: The product's name.
NAME = "apVisit"


def identify_apvisit(file: SpectrumFile) -> bool:
    """True when HDUs 1-4 of ``file`` are images of 3 chips x 4096 pixels.

    Parameters
    ----------
    file : SpectrumFile

    Returns
    -------
    bool
    """
    layout = file.layout
    return (len(layout) > APVISIT_HDU_WAVELENGTH
            and all(hdu.shape == (APVISIT_N_CHIPS, APVISIT_CHIP_PIXELS)
                    for hdu in layout[1:APVISIT_HDU_WAVELENGTH + 1]))


def visit_on_apstar_grid(visit: ApVisitSpectrum, *, bad_bits=None) -> np.ndarray:
    """An apVisit spectrum in its rest frame, resampled onto the apStar grid.

    Each chip is resampled on its own (linear in log wavelength, masked neighbours masked,
    :class:`Regridder`), so no pixel is interpolated across a chip gap; apStar pixels that no
    chip covers are masked (ivar 0, bit REGRID_MASKED_NEIGHBOUR).

    Parameters
    ----------
    visit : ApVisitSpectrum
    bad_bits : iterable of int, optional
        APOGEE_PIXMASK bits that make a pixel unusable (default: those of
        :func:`inverse_variance`).

    Returns
    -------
    ndarray, shape (1, 3, 8575)  flux, inverse variance, bitmask
    """
    options = {} if bad_bits is None else {"bad_bits": bad_bits}
    ivar = inverse_variance(visit.flux, visit.error, visit.pixmask, **options)
    target = apstar_wavelength()
    out = stack_spectra(np.ones(target.size), np.zeros(target.size))
    covered = np.zeros(target.size, dtype=bool)
    for chip in range(visit.wavelength.shape[0]):
        order = np.argsort(visit.rest_wavelength[chip])
        X_chip = stack_spectra(visit.flux[chip, order], ivar[chip, order],
                               pixmask=visit.pixmask[chip, order])
        regridder = Regridder(visit.rest_wavelength[chip, order],
                              target_wavelength=target).fit(X_chip)
        inside = regridder.inside_ & ~covered
        out[:, :, inside] = regridder.transform(X_chip)[:, :, inside]
        covered |= inside
    set_bit(out[:, MASK], ~covered[None, :], BIT_REGRID_MASKED)
    return out


def read_apvisit_product(file: SpectrumFile, digest: bool) -> ProductSpectra:
    """The visit of an apVisit file on the apStar grid (its SHA-256 recorded when
    ``digest``).

    Parameters
    ----------
    file : SpectrumFile
    digest : bool

    Returns
    -------
    ProductSpectra
    """
    visit = parse_apvisit(file.data, file.path, layout=file.layout, digest=digest)
    return ProductSpectra(str(file.path), NAME, [visit.apogee_id], np.array([visit.snr]),
                          apstar_wavelength(), visit_on_apstar_grid(visit), False,
                          visit.sha256)


register_product(NAME, identify=identify_apvisit, read=read_apvisit_product, normalized=False,
                 priority=30)
