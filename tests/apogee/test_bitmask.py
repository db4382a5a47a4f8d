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
