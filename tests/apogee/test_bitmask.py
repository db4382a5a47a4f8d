"""Bitmask decoding, checked bit by bit against a plain computation."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from skcannon.apogee.bitmask import (
    APOGEE_PIXMASK_BITS,
    DEFAULT_BAD_PIXEL_BITS,
    STARFLAG_BITS,
    bad_pixels,
    bits_to_mask,
    decode_flags,
)


def test_default_bits_are_0_to_7_and_12():
    assert set(DEFAULT_BAD_PIXEL_BITS) == {*range(8), 12}
    assert all(bit in APOGEE_PIXMASK_BITS for bit in DEFAULT_BAD_PIXEL_BITS)


@given(st.lists(st.integers(0, 2**15 - 1), min_size=1, max_size=50),
       st.sets(st.integers(0, 14), max_size=6))
def test_bad_pixels_matches_bitwise_loop(values, bits):
    mask = np.array(values)
    expected = [any((v >> b) & 1 for b in bits) for v in values]
    assert bad_pixels(mask, bits=bits).tolist() == expected


@given(st.sets(st.sampled_from(sorted(STARFLAG_BITS))))
def test_decode_flags_round_trip(bits):
    names = decode_flags(bits_to_mask(bits), STARFLAG_BITS)
    assert names == [STARFLAG_BITS[b] for b in sorted(bits)]


def test_decode_handles_negative_storage_and_unknown_bits():
    assert decode_flags(-2**31, STARFLAG_BITS)[0] == "BIT31"
    assert decode_flags(1 << 30, {}) == ["BIT30"]


def test_dr17_tables_match_the_pipeline_bit_by_bit():
    """Pinned to sdss/apogee 0.17.26 python/apogee/utils/bitmask.py (the DR17 pipeline's own
    tables, from which the DR17 bitmask page is generated)."""
    from skcannon.apogee.bitmask import ASPCAPFLAG_BITS, EXTRATARG_BITS, EXTRATARG_DUPLICATE_BIT

    star = ["BAD_PIXELS", "COMMISSIONING", "BRIGHT_NEIGHBOR", "VERY_BRIGHT_NEIGHBOR", "LOW_SNR",
            "", "", "", "", "PERSIST_HIGH", "PERSIST_MED", "PERSIST_LOW", "PERSIST_JUMP_POS",
            "PERSIST_JUMP_NEG", "", "", "SUSPECT_RV_COMBINATION", "SUSPECT_BROAD_LINES",
            "BAD_RV_COMBINATION", "RV_REJECT", "RV_SUSPECT", "MULTIPLE_SUSPECT", "RV_FAIL",
            "SUSPECT_ROTATION", "MTPFLUX_LT_75", "MTPFLUX_LT_50"]
    assert STARFLAG_BITS == {k: n for k, n in enumerate(star) if n}
    pix = ["BADPIX", "CRPIX", "SATPIX", "UNFIXABLE", "BADDARK", "BADFLAT", "BADERR", "NOSKY",
           "LITTROW_GHOST", "PERSIST_HIGH", "PERSIST_MED", "PERSIST_LOW", "SIG_SKYLINE",
           "SIG_TELLURIC", "NOT_ENOUGH_PSF", "", "FERRE_MASK"]
    assert {k: v[0] for k, v in APOGEE_PIXMASK_BITS.items()} == {
        k: n for k, n in enumerate(pix) if n}
    aspcap = ["TEFF_WARN", "LOGG_WARN", "VMICRO_WARN", "M_H_WARN", "ALPHA_M_WARN", "C_M_WARN",
              "N_M_WARN", "STAR_WARN", "CHI2_WARN", "COLORTE_WARN", "ROTATION_WARN", "SN_WARN",
              "SPEC_HOLE_WARN", "ATMOS_HOLE_WARN", "VSINI_WARN", "", "TEFF_BAD", "LOGG_BAD",
              "VMICRO_BAD", "M_H_BAD", "ALPHA_M_BAD", "C_M_BAD", "N_M_BAD", "STAR_BAD",
              "CHI2_BAD", "COLORTE_BAD", "ROTATION_BAD", "SN_BAD", "SPEC_HOLE_BAD",
              "ATMOS_HOLE_BAD", "VSINI_BAD", "NO_ASPCAP_RESULT", "MISSING_APSTAR", "NO_GRID",
              "BAD_FRAC_LOWSNR", "BAD_FRAC_BADPIX", "FERRE_FAIL", "", "", "", "PROBLEM_TARGET",
              "MULTIPLE_SUSPECT"]
    assert ASPCAPFLAG_BITS == {k: n for k, n in enumerate(aspcap) if n}
    assert EXTRATARG_BITS == {0: "NOT_MAIN", 1: "COMMISSIONING", 2: "TELLURIC", 3: "APO1M",
                              4: "DUPLICATE"}
    assert EXTRATARG_BITS[EXTRATARG_DUPLICATE_BIT] == "DUPLICATE"
    # the issue's case: an outlier explanation names DR17's flags
    assert decode_flags((1 << 23) | (1 << 24) | (1 << 25), STARFLAG_BITS) == [
        "SUSPECT_ROTATION", "MTPFLUX_LT_75", "MTPFLUX_LT_50"]
    assert decode_flags(1 << 16, APOGEE_PIXMASK_BITS) == ["FERRE_MASK"]
    assert 16 not in DEFAULT_BAD_PIXEL_BITS     # an ASPCAP fitting mask, not a bad pixel
