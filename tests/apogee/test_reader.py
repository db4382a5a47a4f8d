"""Reading real apStar files, and clear errors for bad ones."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skcannon.apogee.bitmask import DEFAULT_BAD_PIXEL_BITS
from skcannon.apogee.reader import read_apstar
from skcannon.errors import BadFileError
from tests.conftest import shared_file


def test_reads_combined_row_and_header(apstar_files):
    for path in apstar_files:
        spectrum = read_apstar(path)
        with fits.open(path) as hdul:
            flux, error, mask = (np.atleast_2d(hdul[i].data)[0] for i in (1, 2, 3))
            header = hdul[0].header
        np.testing.assert_array_equal(spectrum.flux, flux)
        np.testing.assert_array_equal(spectrum.error, error)
        np.testing.assert_array_equal(spectrum.pixmask, mask)
        assert spectrum.apogee_id == header["OBJID"].strip()
        assert spectrum.field == path.parent.name
        assert spectrum.telescope == path.parent.parent.name
        assert spectrum.snr == pytest.approx(header["SNR"])
        wave = 10 ** (header["CRVAL1"] + header["CDELT1"] * np.arange(8575))
        np.testing.assert_allclose(spectrum.wavelength, wave, rtol=1e-12)
        assert 15100 < spectrum.wavelength[0] < 15101 and 16999 < spectrum.wavelength[-1] < 17000
        assert spectrum.chip_ranges["blue"] == (header["BMIN"], header["BMAX"])
        assert spectrum.chip_ranges["red"] == (header["RMIN"], header["RMAX"])


def test_bad_bits_and_nonfinite_get_zero_ivar(apstar_files):
    spectrum = read_apstar(apstar_files[0])
    flagged = np.zeros(spectrum.flux.size, dtype=bool)
    for bit in DEFAULT_BAD_PIXEL_BITS:
        flagged |= (spectrum.pixmask >> bit) & 1 == 1
    assert flagged.any(), "real file should have some flagged pixels"
    bad = flagged | ~np.isfinite(spectrum.flux) | ~(spectrum.error > 0)
    assert np.all(spectrum.ivar[bad] == 0)
    good = ~bad & np.isfinite(spectrum.error)
    np.testing.assert_allclose(spectrum.ivar[good], spectrum.error[good] ** -2)
    # bits outside the default set (e.g. 9-11 persistence) do not mask on their own
    only_persist = ((spectrum.pixmask & (0b111 << 9)) != 0) & ~bad
    assert np.all(spectrum.ivar[only_persist] > 0)


def test_custom_bits_change_the_mask(apstar_files):
    default = read_apstar(apstar_files[0])
    none = read_apstar(apstar_files[0], bad_bits=())
    assert (none.ivar > 0).sum() > (default.ivar > 0).sum()


def test_single_visit_older_layout():
    path = shared_file("apogee", "mystery", "mystery_spec_wiped.fits")
    spectrum = read_apstar(path)
    assert spectrum.flux.shape == (8575,)
    assert spectrum.telescope == "apo25m"
    assert spectrum.snr == pytest.approx(366.512, rel=1e-4)
    # zero-flux pixels in this file must not count as good when their error is not positive
    assert np.all(spectrum.ivar[~np.isfinite(spectrum.error) | (spectrum.error <= 0)] == 0)


def test_missing_file():
    with pytest.raises(BadFileError, match="no such file"):
        read_apstar("/nonexistent/apStar-dr17-x.fits")


def test_truncated_file_names_the_file(apstar_files, tmp_path):
    bad = tmp_path / "apStar-dr17-truncated.fits"
    bad.write_bytes(apstar_files[0].read_bytes()[: 200_000])
    with pytest.raises(BadFileError, match="apStar-dr17-truncated.fits") as info:
        read_apstar(bad)
    assert "FITS" in str(info.value) or "HDU" in str(info.value)


def test_not_fits(tmp_path):
    bad = tmp_path / "apStar-dr17-text.fits"
    bad.write_text("<html>502 Bad Gateway</html>")
    with pytest.raises(BadFileError, match="text.fits: not a FITS file"):
        read_apstar(bad)


def test_missing_hdu(apstar_files, tmp_path):
    bad = tmp_path / "apStar-dr17-twohdus.fits"
    with fits.open(apstar_files[0]) as hdul:
        fits.HDUList([hdul[0].copy(), hdul[1].copy()]).writeto(bad)
    with pytest.raises(BadFileError, match="HDUs 1-3"):
        read_apstar(bad)


def test_wrong_length(apstar_files, tmp_path):
    bad = tmp_path / "apStar-dr17-short.fits"
    shutil.copy(apstar_files[0], bad)
    with fits.open(bad, mode="update") as hdul:
        hdul[2].data = hdul[2].data[:, :8000]
    with pytest.raises(BadFileError, match="error has 8000 pixels; expected 8575"):
        read_apstar(bad)


def test_caller_arrays_untouched_and_float32_accepted(apstar_files, tmp_path):
    path = tmp_path / "apStar-dr17-f32.fits"
    with fits.open(apstar_files[0]) as hdul:
        hdus = [hdul[0].copy()] + [
            fits.ImageHDU(hdul[i].data.astype(np.float32 if i < 3 else np.int16),
                          header=hdul[i].header) for i in (1, 2, 3)]
        fits.HDUList(hdus).writeto(path)
    a = read_apstar(path)
    b = read_apstar(apstar_files[0])
    np.testing.assert_allclose(a.flux, b.flux, rtol=1e-6)
    np.testing.assert_array_equal(a.ivar > 0, b.ivar > 0)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_fits_files_read_or_fail_cleanly(apstar_files, tmp_path_factory, data):
    """Hypothesis-generated damage (truncation, overwritten bytes, inserted bytes) to a real
    apStar file: the reader returns a spectrum on the apStar grid or raises BadFileError -
    never another exception."""
    original = apstar_files[0].read_bytes()
    damaged = bytearray(original)
    kind = data.draw(st.sampled_from(["truncate", "overwrite", "insert"]))
    at = data.draw(st.integers(0, len(original) - 1))
    if kind == "truncate":
        del damaged[at:]
    elif kind == "overwrite":
        chunk = data.draw(st.binary(min_size=1, max_size=64))
        damaged[at:at + len(chunk)] = chunk
    else:
        damaged[at:at] = data.draw(st.binary(min_size=1, max_size=64))
    path = tmp_path_factory.mktemp("damaged") / "apStar-dr17-damaged.fits"
    path.write_bytes(bytes(damaged))
    from skcannon.apogee.fits_size import fits_expected_size

    complete = fits_expected_size(original, "original")
    try:
        spectrum = read_apstar(path)
    except BadFileError as exc:
        assert "apStar-dr17-damaged.fits" in str(exc)
        return
    # a changed length is always caught (only cutting the last block's padding is harmless)
    assert kind == "overwrite" or len(damaged) == complete
    assert spectrum.flux.shape == (8575,) and spectrum.wavelength[0] == pytest.approx(15100.8,
                                                                                    abs=0.1)
