"""The product registry: a new product is one identifier + reader registered together; a file
no identifier claims (or several claim equally) is a named error, never a fall-through."""

from __future__ import annotations

import numpy as np
import pytest

from skcannon.data.products import product_names, read_product
from skcannon.data.registry import (
    ProductSpectra,
    SpectrumFile,
    register_product,
    unregister_product,
)
from skcannon.errors import BadFileError
from skcannon.spectra import stack_spectra


def _toy_identify(file: SpectrumFile) -> bool:
    primary = file.layout[0]
    return len(primary.shape) == 1 and "TOYSPEC" in primary.cards


def _toy_read(file: SpectrumFile, digest: bool) -> ProductSpectra:
    from astropy.io import fits

    with fits.open(file.path) as hdul:
        flux = np.asarray(hdul[0].data, float)
        star = str(hdul[0].header["TOYSPEC"])
    X = stack_spectra(flux, np.full(flux.size, 1e4))
    return ProductSpectra(file.name, "toy", [star], np.array([np.nan]),
                          np.linspace(15000.0, 17000.0, flux.size), X, True, "")


@pytest.fixture
def toy_product():
    register_product("toy", identify=_toy_identify, read=_toy_read, normalized=True)
    try:
        yield "toy"
    finally:
        unregister_product("toy")


def _toy_file(path):
    from astropy.io import fits

    hdu = fits.PrimaryHDU(np.linspace(0.9, 1.1, 50).astype(np.float32))
    hdu.header["TOYSPEC"] = "2M00000000+0000000"
    hdu.writeto(path)
    return path


def test_a_registered_toy_product_is_read_end_to_end_then_gone(tmp_path, toy_product):
    path = _toy_file(tmp_path / "toy.fits")
    assert "toy" in product_names()
    spectra = read_product(path)
    assert spectra.product == "toy" and spectra.ids == ["2M00000000+0000000"]
    assert spectra.X.shape == (1, 3, 50)
    np.testing.assert_allclose(spectra.X[0, 0], np.linspace(0.9, 1.1, 50), rtol=1e-6)
    assert read_product(path, product="toy").product == "toy"
    with pytest.raises(BadFileError, match=r"toy.fits: is an toy file, not apStar"):
        read_product(path, product="apStar")
    unregister_product("toy")
    try:
        assert "toy" not in product_names()
        with pytest.raises(BadFileError, match=r"toy.fits: is none of the products apStar, "
                                               r"apVisit, aspcapStar \(HDUs 1-4: none\)"):
            read_product(path)
        with pytest.raises(ValueError, match="product must be one of"):
            read_product(path, product="toy")
    finally:
        register_product("toy", identify=_toy_identify, read=_toy_read, normalized=True)


def test_the_cli_product_choices_come_from_the_registry(toy_product):
    import argparse

    from skcannon.cli.common import add_product_options

    parser = argparse.ArgumentParser()
    add_product_options(parser, "help")
    assert parser.parse_args(["--product", "toy"]).product == "toy"


def test_an_apstar_like_file_with_the_wrong_pixel_count_is_claimed_by_none(tmp_path):
    from astropy.io import fits

    path = tmp_path / "apStar-dr17-2M00000000+0000000.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((2, 8000), np.float32)),
                  fits.ImageHDU(np.ones((2, 8000), np.float32)),
                  fits.ImageHDU(np.zeros((2, 8000), np.int16))]).writeto(path)
    with pytest.raises(BadFileError, match=r"apStar-dr17-2M00000000\+0000000.fits: is none of "
                                           r"the products .*IMAGE \(2, 8000\)"):
        read_product(path)


def test_equal_claims_are_an_ambiguity_error_and_priority_decides(tmp_path, toy_product):
    path = _toy_file(tmp_path / "toy.fits")
    register_product("toy2", identify=_toy_identify, read=_toy_read, normalized=True)
    try:
        with pytest.raises(BadFileError, match=r"claimed by several products \(toy, toy2\)"):
            read_product(path)
    finally:
        unregister_product("toy2")
    register_product("toy3", identify=_toy_identify, read=_toy_read, normalized=True,
                     priority=5)
    try:
        assert read_product(path, product="toy3").product == "toy"   # toy3 reads as toy
    finally:
        unregister_product("toy3")


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="'apStar' is already registered"):
        register_product("apStar", identify=_toy_identify, read=_toy_read, normalized=False)
