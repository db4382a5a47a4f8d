"""APOGEE bitmasks: pixel mask (APOGEE_PIXMASK), STARFLAG, ASPCAPFLAG and EXTRATARG.

Source of every bit: the DR17 pipeline's own tables, sdss/apogee tag 0.17.26 (commit
e134409dc14b20f69e68a0d4d34b2c1b5056a901), ``python/apogee/utils/bitmask.py``: classes
``PixelBitMask`` (APOGEE_PIXMASK), ``StarBitMask`` (APOGEE_STARFLAG), ``AspcapBitMask``
(APOGEE_ASPCAPFLAG) and ``ExtratargBitMask`` (APOGEE2_EXTRATARG). The SDSS DR17 bitmask page
(``https://www.sdss4.org/dr17/irspec/apogee-bitmasks/``) is generated from these classes
(their ``html`` output). Bits the pipeline leaves unnamed are not listed, nor its RESERVED
top bit (31; 63 for ASPCAPFLAG): decoding names them ``BIT<k>``. Earlier 0.17.x tags (up to
0.17.13) lack STARFLAG bits 23-25: they were set for DR17 by commit c612f59 ("change MTPFLUX
bits", 2021-01-22).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from skcannon.spectra import bits_to_mask

#: APOGEE_PIXMASK bits (DR17) and what they mean.
APOGEE_PIXMASK_BITS: Mapping[int, tuple[str, str]] = {
    0: ("BADPIX", "pixel marked as bad in the bad pixel mask"),
    1: ("CRPIX", "pixel marked as a cosmic ray in ap3D"),
    2: ("SATPIX", "pixel marked as saturated in ap3D"),
    3: ("UNFIXABLE", "pixel marked as unfixable in ap3D"),
    4: ("BADDARK", "pixel marked as bad by the dark frame"),
    5: ("BADFLAT", "pixel marked as bad by the flat frame"),
    6: ("BADERR", "pixel set to have a very high error"),
    7: ("NOSKY", "no sky available for this pixel from sky fibres"),
    8: ("LITTROW_GHOST", "pixel falls in the Littrow ghost; may be affected"),
    9: ("PERSIST_HIGH", "pixel falls in a high-persistence region"),
    10: ("PERSIST_MED", "pixel falls in a medium-persistence region"),
    11: ("PERSIST_LOW", "pixel falls in a low-persistence region"),
    12: ("SIG_SKYLINE", "pixel falls near a sky line with significant flux relative to the object"),
    13: ("SIG_TELLURIC", "pixel falls near a significant telluric line"),
    14: ("NOT_ENOUGH_PSF", "fewer than 50 percent of the PSF in good pixels"),
    16: ("FERRE_MASK", "pixel masked by the FERRE mask (< 0.001)"),
}

#: Bits that make a pixel unusable by default: the hardware/reduction failures (0-7) and pixels
#: dominated by sky emission (12). Persistence, telluric and Littrow bits only warn.
DEFAULT_BAD_PIXEL_BITS: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 12)

#: STARFLAG bits (DR17).
STARFLAG_BITS: Mapping[int, str] = {
    0: "BAD_PIXELS", 1: "COMMISSIONING", 2: "BRIGHT_NEIGHBOR", 3: "VERY_BRIGHT_NEIGHBOR",
    4: "LOW_SNR", 9: "PERSIST_HIGH", 10: "PERSIST_MED", 11: "PERSIST_LOW",
    12: "PERSIST_JUMP_POS", 13: "PERSIST_JUMP_NEG", 16: "SUSPECT_RV_COMBINATION",
    17: "SUSPECT_BROAD_LINES", 18: "BAD_RV_COMBINATION", 19: "RV_REJECT", 20: "RV_SUSPECT",
    21: "MULTIPLE_SUSPECT", 22: "RV_FAIL", 23: "SUSPECT_ROTATION", 24: "MTPFLUX_LT_75",
    25: "MTPFLUX_LT_50",
}

#: ASPCAPFLAG bits (DR17).
ASPCAPFLAG_BITS: Mapping[int, str] = {
    0: "TEFF_WARN", 1: "LOGG_WARN", 2: "VMICRO_WARN", 3: "M_H_WARN", 4: "ALPHA_M_WARN",
    5: "C_M_WARN", 6: "N_M_WARN", 7: "STAR_WARN", 8: "CHI2_WARN", 9: "COLORTE_WARN",
    10: "ROTATION_WARN", 11: "SN_WARN", 12: "SPEC_HOLE_WARN", 13: "ATMOS_HOLE_WARN",
    14: "VSINI_WARN", 16: "TEFF_BAD", 17: "LOGG_BAD", 18: "VMICRO_BAD", 19: "M_H_BAD",
    20: "ALPHA_M_BAD", 21: "C_M_BAD", 22: "N_M_BAD", 23: "STAR_BAD", 24: "CHI2_BAD",
    25: "COLORTE_BAD", 26: "ROTATION_BAD", 27: "SN_BAD", 28: "SPEC_HOLE_BAD",
    29: "ATMOS_HOLE_BAD", 30: "VSINI_BAD", 31: "NO_ASPCAP_RESULT", 32: "MISSING_APSTAR",
    33: "NO_GRID", 34: "BAD_FRAC_LOWSNR", 35: "BAD_FRAC_BADPIX", 36: "FERRE_FAIL",
    40: "PROBLEM_TARGET", 41: "MULTIPLE_SUSPECT",
}

#: EXTRATARG bits (DR17 ``APOGEE2_EXTRATARG``, set in allStar over the whole catalog).
EXTRATARG_BITS: Mapping[int, str] = {
    0: "NOT_MAIN", 1: "COMMISSIONING", 2: "TELLURIC", 3: "APO1M", 4: "DUPLICATE",
}
#: EXTRATARG bit of the entries that are not a star's primary (highest-SNR) entry.
EXTRATARG_DUPLICATE_BIT = 4


def bad_pixels(pixmask: np.ndarray, *, bits: Iterable[int] = DEFAULT_BAD_PIXEL_BITS) -> np.ndarray:
    """Boolean array, True where any of ``bits`` is set in ``pixmask``.

    Parameters
    ----------
    pixmask : ndarray of int, any shape
        APOGEE_PIXMASK values.
    bits : iterable of int
        Bit numbers that make a pixel bad.

    Returns
    -------
    ndarray of bool, same shape as ``pixmask``.
    """
    mask_value = np.int64(bits_to_mask(bits))
    return (np.asarray(pixmask).astype(np.int64, copy=False) & mask_value) != 0


def decode_flags(value: int, names: Mapping[int, str]) -> list[str]:
    """Names of the bits set in ``value`` (unknown bits as ``BIT<k>``), lowest bit first.

    Parameters
    ----------
    value : int
        The flag value (STARFLAG, ASPCAPFLAG, APOGEE_PIXMASK of one pixel ...). A negative
        value, as stored in a signed column, is read as its unsigned 64-bit pattern.
    names : mapping of int to str or to (str, str)
        Bit number to name, e.g. :data:`ASPCAPFLAG_BITS`; for ``(name, meaning)`` tuples
        (:data:`APOGEE_PIXMASK_BITS`) the name is taken.

    Returns
    -------
    list of str
        One name per set bit, lowest bit first; empty when ``value`` is 0.
    """
    value = int(value) & ((1 << 64) - 1)  # negative (signed) storage: read as unsigned
    out = []
    bit = 0
    while value >> bit:
        if (value >> bit) & 1:
            entry = names.get(bit, f"BIT{bit}")
            out.append(entry[0] if isinstance(entry, tuple) else entry)
        bit += 1
    return out
