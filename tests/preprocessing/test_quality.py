"""Normalization quality on the real apStar spectra in ../shared."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import theilslopes
from sklearn.pipeline import make_pipeline

from skcannon.apogee import apogee_masker, apogee_normalizer, apogee_regridder
from skcannon.spectra import FLUX, IVAR


@pytest.fixture(scope="module")
def normalized(real_spectra, continuum_file):
    spectra, X = real_spectra
    pipe = make_pipeline(apogee_masker(), apogee_regridder(), apogee_normalizer(continuum_file))
    return spectra, X, pipe.fit(X), pipe.transform(X)


def chip_continuum_pixels(pipe, Y, star, chip):
    normalizer = pipe[-1]
    sel = normalizer.continuum_mask_ & (normalizer.region_index_ == chip) & (Y[star, IVAR] > 0)
    return normalizer.wavelength_[sel], Y[star, FLUX, sel], Y[star, IVAR, sel]


def test_output_is_finite_and_masks_survive(normalized):
    spectra, X, pipe, Y = normalized
    assert np.isfinite(Y).all()
    regridded = pipe[:2].transform(X)
    assert np.all(Y[:, IVAR][regridded[:, IVAR] == 0] == 0)


def test_continuum_median_within_one_percent_on_every_chip(normalized):
    spectra, _, pipe, Y = normalized
    for star in range(len(spectra)):
        for chip in range(3):
            _, flux, _ = chip_continuum_pixels(pipe, Y, star, chip)
            assert flux.size > 50
            assert abs(np.median(flux) - 1) < 0.01, (spectra[star].apogee_id, chip)


def test_no_trend_across_any_chip(normalized):
    spectra, _, pipe, Y = normalized
    for star in range(len(spectra)):
        for chip in range(3):
            wave, flux, ivar = chip_continuum_pixels(pipe, Y, star, chip)
            width = wave.max() - wave.min()
            weighted = np.polyfit(wave, flux, 1, w=np.sqrt(ivar))[0] * width
            robust = theilslopes(flux, wave)[0] * width
            assert abs(weighted) < 0.01, (spectra[star].apogee_id, chip, weighted)
            assert abs(robust) < 0.01, (spectra[star].apogee_id, chip, robust)


def test_snr_independence(normalized):
    """Adding noise (SNR ~150 -> ~40) changes the normalized spectrum only within the noise."""
    spectra, X, pipe, Y = normalized
    rng = np.random.default_rng(11)
    for star in range(len(spectra)):
        x = X[star : star + 1].copy()
        good = x[0, IVAR] > 0
        level = np.median(x[0, FLUX][good])
        sigma_add = level / 40.0
        x[0, FLUX] = x[0, FLUX] + rng.normal(0, sigma_add, x.shape[2])
        x[0, IVAR] = np.where(good, 1 / (1 / np.where(good, x[0, IVAR], 1) + sigma_add**2), 0)
        degraded = pipe.transform(x)[0]
        both = (degraded[IVAR] > 0) & (Y[star, IVAR] > 0)
        z = (degraded[FLUX] - Y[star, FLUX])[both] * np.sqrt(degraded[IVAR][both])
        assert abs(np.mean(z)) < 0.1, spectra[star].apogee_id
        assert 0.85 < np.std(z) < 1.1, spectra[star].apogee_id


def test_similar_labels_give_similar_spectra():
    pytest.skip("the shared data hold no set of real spectra with ASPCAP labels (2 DR17 apStar "
                "files and one unlabelled DR14 file); the check needs many labelled stars")
