"""The ``apStar`` product: combined spectra, DR17 and older (DR13 ``r6``, DR14 single-visit)
layouts (:mod:`skcannon.apogee.reader`).

Identified by HDUs 1-3 being images of 8575 pixels, HDU 3 (APOGEE_PIXMASK) integer.
"""

from __future__ import annotations

import numpy as np

from skcannon.apogee.constants import APSTAR_N_PIXELS, HDU_FLUX, HDU_PIXMASK
from skcannon.apogee.reader import parse_apstar
from skcannon.data.registry import ProductSpectra, SpectrumFile, register_product
from skcannon.spectra import stack_spectra

#: The product's name.
NAME = "apStar"


def identify_apstar(file: SpectrumFile) -> bool:
    """True when HDUs 1-3 of ``file`` hold 8575 pixels each and HDU 3 integers.

    Parameters
    ----------
    file : SpectrumFile

    Returns
    -------
    bool
    """
    layout = file.layout
    return (len(layout) > HDU_PIXMASK
            and all(hdu.shape and hdu.shape[-1] == APSTAR_N_PIXELS
                    for hdu in layout[HDU_FLUX:HDU_PIXMASK + 1])
            and layout[HDU_PIXMASK].bitpix > 0)


def read_apstar_product(file: SpectrumFile, digest: bool) -> ProductSpectra:
    """The combined spectrum of an apStar file (its SHA-256 recorded when ``digest``).

    Parameters
    ----------
    file : SpectrumFile
    digest : bool

    Returns
    -------
    ProductSpectra
    """
    star = parse_apstar(file.data, file.path, layout=file.layout, digest=digest)
    X = stack_spectra(star.flux, star.ivar, pixmask=star.pixmask)
    return ProductSpectra(str(file.path), NAME, [star.apogee_id], np.array([star.snr]),
                          star.wavelength, X, False, star.sha256)


register_product(NAME, identify=identify_apstar, read=read_apstar_product, normalized=False,
                 priority=10)
