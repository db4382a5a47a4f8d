"""The ``aspcapStar`` product: ASPCAP's continuum-normalized spectrum
(:mod:`skcannon.apogee.aspcap`).

Identified by HDU 1 being a 1-D spectrum and HDU 4 a binary table (the ASPCAP row).
"""

from __future__ import annotations

import numpy as np

from skcannon.apogee.aspcap import parse_aspcapstar
from skcannon.apogee.constants import ASPCAP_HDU_FLUX, ASPCAP_HDU_TABLE
from skcannon.data.registry import ProductSpectra, SpectrumFile, register_product
from skcannon.spectra import stack_spectra

#: The product's name.
NAME = "aspcapStar"


def identify_aspcapstar(file: SpectrumFile) -> bool:
    """True when HDU 1 of ``file`` is 1-D and HDU 4 a binary table.

    Parameters
    ----------
    file : SpectrumFile

    Returns
    -------
    bool
    """
    layout = file.layout
    return (len(layout) > ASPCAP_HDU_TABLE
            and str(layout[ASPCAP_HDU_TABLE].cards.get("XTENSION", "")).strip("' ")
            == "BINTABLE"
            and len(layout[ASPCAP_HDU_FLUX].shape) == 1)


def read_aspcapstar_product(file: SpectrumFile, digest: bool) -> ProductSpectra:
    """The normalized spectrum of an aspcapStar file (its SHA-256 recorded when ``digest``).

    Parameters
    ----------
    file : SpectrumFile
    digest : bool

    Returns
    -------
    ProductSpectra
    """
    star = parse_aspcapstar(file.data, file.path, digest=digest)
    return ProductSpectra(str(file.path), NAME, [star.apogee_id], np.array([star.snr]),
                          star.wavelength, stack_spectra(star.flux, star.ivar), True,
                          star.sha256)


register_product(NAME, identify=identify_aspcapstar, read=read_aspcapstar_product,
                 normalized=True, priority=20)
