"""Continuum normalization batched across stars and regions: the same numbers as one fit per
region with nanmedian-based clipping statistics (the code before the batching)."""

from __future__ import annotations

import numpy as np

from skcannon import stats
from skcannon.apogee.grids import aspcap_dr12_wavelength
from skcannon.preprocessing.continuum import (
    ContinuumNormalizer,
    fit_continuum_batch,
    masked_location_scale,
)
from skcannon.spectra import FLUX, IVAR
from tests.conftest import CONTINUUM_FILE


def _nanmedian_location_scale(values, use):
    centre, scale = np.zeros((len(values), 1)), np.ones((len(values), 1))
    rows = use.any(axis=1)
    centre[rows], scale[rows] = stats.robust_location_scale(
        np.where(use[rows], values[rows], np.nan), axis=1, keepdims=True)
    return centre, scale


def test_masked_location_scale_is_nanmedian_exactly():
    rng = np.random.default_rng(0)
    for n, m in [(400, 7), (200, 120), (30, 1), (30, 2)]:
        values = rng.normal(size=(n, m))
        use = rng.random((n, m)) < 0.6
        use[:3] = False                                    # empty rows: (0, 1)
        centre, scale = masked_location_scale(values, use)
        expected = _nanmedian_location_scale(values, use)
        np.testing.assert_array_equal(centre, expected[0])
        np.testing.assert_array_equal(scale, expected[1])


def test_regions_fitted_together_equal_one_fit_per_region():
    """normalize (all regions' rows in one batch) = fit_continuum_batch per region with its
    shared basis, to 1e-10 of the continuum, on noisy spectra with outliers and masked
    pixels."""
    wavelength = aspcap_dr12_wavelength()
    normalizer = ContinuumNormalizer(CONTINUUM_FILE, wavelength=wavelength).fit()
    rng = np.random.default_rng(1)
    n = 40
    slope = 1 + 0.2 * (wavelength - wavelength.mean()) / np.ptp(wavelength)
    X = np.zeros((n, 3, len(wavelength)))
    X[:, FLUX] = rng.uniform(0.5, 2, (n, 1)) * slope * (1 + 0.01 * rng.normal(size=(n, len(
        wavelength))))
    X[:, FLUX] += 0.5 * (rng.random(X[:, FLUX].shape) < 0.01)          # outliers to clip
    X[:, IVAR] = np.where(rng.random(X[:, IVAR].shape) < 0.05, 0.0, 1e4)
    _, continuum = normalizer.normalize(X)
    for k, basis in enumerate(normalizer.bases_):
        inside = normalizer.region_index_ == k
        cont = normalizer.continuum_mask_[inside]
        coef, _ = fit_continuum_batch(X[:, FLUX][:, inside][:, cont],
                                      X[:, IVAR][:, inside][:, cont], basis[cont],
                                      normalizer.clip_sigma, normalizer.max_iter)
        np.testing.assert_allclose(continuum[:, inside], coef @ basis.T, rtol=1e-10)


def test_a_failed_region_is_flagged_alone():
    """A star whose region has no usable continuum pixel (too few) or a negative continuum
    gets that region's bit, flux 1 and ivar 0 there, and nothing elsewhere."""
    from skcannon.preprocessing.continuum import (
        BIT_CONTINUUM_NOT_POSITIVE,
        BIT_CONTINUUM_TOO_FEW,
    )
    from skcannon.spectra import MASK

    wavelength = aspcap_dr12_wavelength()
    normalizer = ContinuumNormalizer(CONTINUUM_FILE, wavelength=wavelength).fit()
    X = np.zeros((3, 3, len(wavelength)))
    X[:, FLUX], X[:, IVAR] = 1.2, 1e4
    first, second = normalizer.region_index_ == 0, normalizer.region_index_ == 1
    X[0, IVAR, first] = 0.0                                     # star 0: region 0 unusable
    X[1, FLUX, second] = -1.0                                   # star 1: region 1 negative
    out, continuum = normalizer.normalize(X)
    bits = out[:, MASK].astype(np.int64)
    too_few, not_positive = 1 << BIT_CONTINUUM_TOO_FEW, 1 << BIT_CONTINUUM_NOT_POSITIVE
    assert np.all(bits[0, first] & too_few) and not np.any(bits[0, ~first] & too_few)
    assert np.all(bits[1, second] & not_positive) and not np.any(bits[1, ~second] & not_positive)
    assert not np.any(bits[2] & (too_few | not_positive))
    assert np.all(out[0, IVAR, first] == 0) and np.all(out[1, IVAR, second] == 0)
    assert np.all(out[0, FLUX, first] == 1) and np.all(continuum[1, second] == 1)
    inside = normalizer.region_index_ >= 0
    np.testing.assert_allclose(out[2, FLUX, inside], 1.0, rtol=1e-9)
