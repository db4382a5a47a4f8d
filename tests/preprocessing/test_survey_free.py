"""The transformers on a survey that is not APOGEE: its own grid, regions and bits, and a
continuum basis registered by the user."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from numpy.polynomial import chebyshev, legendre
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError

from skcannon.preprocessing import (
    CONTINUUM_BASES,
    BitmaskMasker,
    ContinuumNormalizer,
    Regridder,
    register_continuum_basis,
    unregister_continuum_basis,
)
from skcannon.spectra import BIT_BAD_INPUT, FLUX, IVAR, MASK, bits_to_mask, has_bit, stack_spectra

#: A synthetic survey: 1000 pixels, linear in wavelength, 5000-6000 Angstrom, two regions
#: (the second reaches past the last pixel so that it is inside), continuum every 5th pixel.
GRID = np.linspace(5000.0, 6000.0, 1000)
REGIONS = ((5000.0, 5500.0), (5500.0, 6001.0))
CONTINUUM = np.arange(GRID.size) % 5 == 0


def planck(wavelength, temperature):
    """Blackbody shape (arbitrary units): smooth, but in no polynomial basis."""
    x = 1.4388e8 / (wavelength * temperature)   # h c / (lambda k T), lambda in Angstrom
    return wavelength**-5 / np.expm1(x)


def true_continuum(n_stars, rng):
    """A different smooth positive continuum per star and per region (a jump between them, as
    between two detectors), shape (n_stars, n_pixels)."""
    out = np.empty((n_stars, GRID.size))
    temperatures = rng.uniform(4000, 6500, n_stars)
    for star, temperature in enumerate(temperatures):
        shape = planck(GRID, temperature)
        shape /= shape.mean()
        gain = np.where(GRID < REGIONS[0][1], rng.uniform(500, 900), rng.uniform(200, 400))
        out[star] = gain * shape * (1 + 0.03 * np.sin((GRID - 5000) / 300))
    return out


def line_spectrum(n_stars, rng):
    """Normalized spectra: Gaussian absorption lines between the continuum pixels, 1 on them."""
    centres = rng.uniform(5000, 6000, 120)
    depth = rng.uniform(0.05, 0.6, (n_stars, centres.size))
    profile = np.exp(-0.5 * ((GRID[:, None] - centres[None, :]) / 0.8) ** 2)
    lines = 1 - np.clip(depth @ profile.T, 0, 0.9)
    lines[:, CONTINUUM] = 1.0
    return lines


@pytest.fixture(scope="module")
def survey_spectra():
    rng = np.random.default_rng(42)
    n_stars = 6
    continuum = true_continuum(n_stars, rng)
    flux_true = line_spectrum(n_stars, rng) * continuum
    sigma = flux_true / 100.0                                 # S/N 100
    flux = flux_true + rng.normal(0, 1, flux_true.shape) * sigma
    return stack_spectra(flux, 1 / sigma**2), continuum


def test_normalizer_recovers_the_continuum_of_another_survey_to_one_percent(survey_spectra):
    X, continuum = survey_spectra
    normalizer = ContinuumNormalizer(CONTINUUM, wavelength=GRID, regions=REGIONS).fit(X)
    normalized, fitted = normalizer.normalize(X)
    assert normalizer.regions_.tolist() == [list(r) for r in REGIONS]
    assert set(np.unique(normalizer.region_index_)) == {0, 1}     # every pixel in a region
    assert np.max(np.abs(fitted / continuum - 1)) < 0.01
    assert np.all(normalized[:, IVAR] > 0) and np.isfinite(normalized).all()
    np.testing.assert_allclose(np.median(normalized[:, FLUX][:, CONTINUUM], axis=1), 1.0,
                               atol=0.005)


def test_each_region_is_fitted_on_its_own(survey_spectra):
    """One region over the whole grid cannot follow the jump between the two detectors."""
    X, continuum = survey_spectra
    whole = ContinuumNormalizer(CONTINUUM, wavelength=GRID).fit(X)
    assert whole.regions_.tolist() == [[5000.0, 6000.0]] and np.all(whole.region_index_ == 0)
    _, fitted = whole.normalize(X)
    assert np.max(np.abs(fitted / continuum - 1)) > 0.1


def test_pixels_outside_every_region_are_masked(survey_spectra):
    X, _ = survey_spectra
    normalizer = ContinuumNormalizer(CONTINUUM, wavelength=GRID,
                                     regions=[(5000, 5400), (5600, 6001)]).fit(X)
    out = normalizer.transform(X)
    gap = (GRID >= 5400) & (GRID < 5600)
    assert np.array_equal(normalizer.region_index_ < 0, gap)
    assert np.all(out[:, IVAR][:, gap] == 0) and np.all(out[:, FLUX][:, gap] == 1.0)
    assert np.all(out[:, IVAR][:, ~gap] > 0)


@pytest.mark.parametrize(("regions", "problem"), [
    ([(5000, 5500, 6000)], "sequence of"), ([(5500, 5000)], "start < stop"),
    ([(5000, 5600), (5500, 6000)], "must not overlap"), ([(np.nan, 5500)], "finite")])
def test_bad_regions_are_named(regions, problem):
    with pytest.raises(ValueError, match=f"regions must .*{problem}"):
        ContinuumNormalizer(CONTINUUM, wavelength=GRID, regions=regions).fit()


def test_normalizer_needs_its_wavelength_grid():
    with pytest.raises(ValueError, match="needs wavelength"):
        ContinuumNormalizer(CONTINUUM, wavelength=None).fit()


def test_regridder_is_exact_for_a_function_linear_in_log_wavelength():
    """Linear interpolation in log wavelength reproduces a + b log(lambda) exactly, from one
    linear grid onto another (and masks the target pixels beyond the source grid)."""
    source = np.linspace(4990.0, 6010.0, 1100)
    target = GRID
    flux = 3.0 + 2.0 * np.log(source)
    out = Regridder(source, target).fit().transform(
        stack_spectra(flux, np.full(source.size, 4.0)))
    np.testing.assert_allclose(out[0, FLUX], 3.0 + 2.0 * np.log(target), rtol=1e-13)
    assert np.all(out[0, IVAR] > 0)
    beyond = Regridder(source, np.array([4980.0, 5500.0, 6020.0])).fit().transform(
        stack_spectra(flux, np.full(source.size, 4.0)))
    assert beyond[0, IVAR].tolist()[::2] == [0.0, 0.0] and beyond[0, IVAR][1] > 0


@pytest.mark.parametrize("missing", ["source_wavelength", "target_wavelength"])
def test_regridder_needs_both_grids(missing):
    grids = {"source_wavelength": GRID, "target_wavelength": GRID, missing: None}
    with pytest.raises(ValueError, match=f"needs {missing}"):
        Regridder(**grids).fit()


def test_masker_masks_a_survey_bit_of_its_own_and_leaves_the_others():
    """Bit 3 of some survey's bitmask marks bad pixels; bits 0 and 5 only warn."""
    pixmask = np.array([[0, 1 << 3, 1 << 0, 1 << 5, (1 << 3) | (1 << 5), 1 << 3]])
    X = stack_spectra(np.ones((1, 6)), np.full((1, 6), 2.0), pixmask=pixmask)
    out = BitmaskMasker(bad_bits=(3,)).fit(X).transform(X)
    assert out[0, IVAR].tolist() == [2.0, 0.0, 2.0, 2.0, 0.0, 0.0]
    np.testing.assert_array_equal(out[0, MASK], pixmask[0])      # the bits are kept
    untouched = BitmaskMasker().fit(X).transform(X)               # default: no bit is bad
    assert untouched[0, IVAR].tolist() == [2.0] * 6
    assert not np.any(has_bit(untouched[0, MASK], BIT_BAD_INPUT))


def test_bit_numbers_are_checked():
    assert bits_to_mask((0, 3, 63)) == 1 | 8 | (1 << 63)
    X = stack_spectra(np.ones((1, 4)), np.ones((1, 4)))
    with pytest.raises(ValueError, match="0..63, got 64"):
        BitmaskMasker(bad_bits=(3, 64)).fit(X)


def test_a_survey_pipeline_end_to_end(survey_spectra):
    """Masking -> regridding from the instrument's grid (twice as fine: every model pixel is an
    instrument pixel) -> per-region normalization; bit 3 masks, the continuum is recovered."""
    X, continuum = survey_spectra
    observed = np.linspace(5000.0, 6000.0, 2 * GRID.size - 1)
    raw = np.empty((X.shape[0], 3, observed.size))
    raw[:, :, ::2] = X
    raw[:, :, 1::2] = 0.5 * (X[:, :, :-1] + X[:, :, 1:])
    raw[:, MASK] = 0.0
    raw[:, MASK, 600] = 1 << 3                      # model pixel 300: bad in the survey's bits
    pipe = make_pipeline(BitmaskMasker(bad_bits=(3,)), Regridder(observed, GRID),
                         ContinuumNormalizer(CONTINUUM, wavelength=GRID, regions=REGIONS))
    out = pipe.fit_transform(raw)
    assert out.shape == X.shape and np.isin(pipe[1].weight_, (0.0, 1.0)).all()  # selection
    assert np.all(out[:, IVAR, 300] == 0) and np.all(out[:, IVAR][:, np.arange(1000) != 300] > 0)
    _, fitted = pipe[-1].normalize(pipe[:2].transform(raw))
    assert np.max(np.abs(fitted / continuum - 1)) < 0.01


def legendre_basis(wavelength, region_range, order):
    lo, hi = region_range
    return legendre.legvander(2 * (wavelength - lo) / (hi - lo) - 1, order)


def test_a_registered_basis_normalizes_and_is_removed_again(survey_spectra):
    """Legendre polynomials span the Chebyshev ones' space: the same continuum comes out."""
    X, _ = survey_spectra
    assert "legendre" not in CONTINUUM_BASES
    register_continuum_basis("legendre", legendre_basis)
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_continuum_basis("legendre", legendre_basis)
        by_legendre = ContinuumNormalizer(CONTINUUM, wavelength=GRID, regions=REGIONS,
                                          basis="legendre").fit(X).normalize(X)[1]
        by_chebyshev = ContinuumNormalizer(CONTINUUM, wavelength=GRID,
                                           regions=REGIONS).fit(X).normalize(X)[1]
        np.testing.assert_allclose(by_legendre, by_chebyshev, rtol=1e-9)
        from skcannon.cli.common import add_continuum_options

        parser = argparse.ArgumentParser()
        add_continuum_options(parser)                 # the CLI's choices are the registry's
        assert parser.parse_args(["--basis", "legendre"]).basis == "legendre"
    finally:
        assert unregister_continuum_basis("legendre") is legendre_basis
    assert "legendre" not in CONTINUUM_BASES
    with pytest.raises(InvalidParameterError, match="'basis' parameter .* Got 'legendre'"):
        ContinuumNormalizer(CONTINUUM, wavelength=GRID, basis="legendre").fit()
    with pytest.raises(KeyError, match="no continuum basis registered as 'legendre'"):
        unregister_continuum_basis("legendre")


def test_the_registered_bases_are_the_documented_ones():
    """chebyshev: Chebyshev polynomials over the region; sincos: 1 + order sine/cosine pairs."""
    assert {"chebyshev", "sincos"} <= set(CONTINUUM_BASES)
    wavelength = np.linspace(5000, 5500, 7)
    np.testing.assert_allclose(CONTINUUM_BASES["chebyshev"](wavelength, (5000, 5500), 2),
                               chebyshev.chebvander(np.linspace(-1, 1, 7), 2), atol=1e-14)
    assert CONTINUUM_BASES["sincos"](wavelength, (5000, 5500), 2).shape == (7, 5)
    with pytest.raises(TypeError, match="must be callable"):
        register_continuum_basis("broken", "not a function")
    assert "broken" not in CONTINUUM_BASES
