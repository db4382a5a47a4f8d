"""Continuum pixels found from the data (skcannon.model.continuum_pixels, skcannon continuum),
on spectra from the independent emulator multiplied by a smooth, star-to-star varying continuum
(simulated)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from skcannon.model.continuum_pixels import find_continuum_pixels, select_pixels
from skcannon.preprocessing.continuum import load_continuum_pixels

NAMES = ("TEFF", "LOGG", "FE_H", "ALPHA_M")


def _raw_spectra(emulator, n, seed):
    """Labels (n, 4) and unnormalized spectra: emulator flux x a random smooth continuum."""
    rng = np.random.default_rng(seed)
    labels = emulator.sample_labels(n, seed)
    labels[:, 4] = 0.5 * (emulator.label_min[4] + emulator.label_max[4])
    flux = emulator.flux(labels) + rng.normal(size=(n, emulator.n_pixels)) / 100
    x = np.linspace(-1, 1, emulator.n_pixels)
    continuum = rng.uniform(500, 2000, (n, 1)) * (1 + rng.normal(0, 0.1, (n, 1)) * x
                                                  + rng.normal(0, 0.05, (n, 1)) * x ** 2)
    X = np.stack([flux * continuum, 1e4 / continuum ** 2, np.zeros_like(flux)], axis=1)
    return labels[:, :4], X


def test_selection_shares_the_pixels_among_regions_by_size():
    score = np.array([5, 1, 2, np.inf, 3, 0.5, 9, 4, 1, 1.0])
    region = np.array([0, 0, 0, 0, 1, 1, 1, 1, -1, -1])
    mask = select_pixels(score, region, 4)
    np.testing.assert_array_equal(np.flatnonzero(mask), [1, 2, 4, 5])   # 2 per region, best


@pytest.mark.slow
def test_the_iteration_converges_and_is_stable_to_its_seed(emulator, continuum_file):
    from skcannon.apogee.preprocessor import apogee_normalizer

    lab = load_continuum_pixels(continuum_file)
    labels, X = _raw_spectra(emulator, 120, 1)
    normalizer = apogee_normalizer(lab)
    results = [find_continuum_pixels(X, labels, normalizer, label_names=NAMES, seed=seed,
                                     max_iter=20) for seed in (lab, None)]
    continua = []
    for found in results:
        assert found.converged and found.mask.sum() == 529
        assert found.changes[-1] < 0.1 * 529 < found.changes[0]
        assert found.criteria["max_abs_theta0_minus_1"] <= found.criteria["flux_tol"]
        continua.append(apogee_normalizer(found.mask).fit(X).normalize(X)[1])
    # the two seeds pick partly different pixels, but the same continuum (to < 1 %)
    assert np.median(np.abs(continua[0] / continua[1] - 1)) < 0.01


def test_cli_continuum_writes_a_pixel_file_and_its_criteria(emulator, continuum_file,
                                                           tmp_path, capsys):
    from skcannon.apogee.grids import aspcap_dr12_wavelength
    from skcannon.cli import main

    labels, X = _raw_spectra(emulator, 60, 2)
    np.savez(tmp_path / "raw.npz", flux=X[:, 0], ivar=X[:, 1],
             wavelength=aspcap_dr12_wavelength(),
             **{name: labels[:, i] for i, name in enumerate(NAMES)})
    out = tmp_path / "pixels.npz"
    assert main(["continuum", str(tmp_path / "raw.npz"), "--labels", *NAMES, "--seed-pixels",
                 str(continuum_file), "--max-iter", "2", "--compare", str(continuum_file),
                 "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "529 continuum pixels after 2 iterations" in printed and "among the 529" in printed
    assert load_continuum_pixels(out).sum() == 529
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["flux_tol"] == 0.02 and len(record["changes"]) == 2
    assert main(["continuum", str(tmp_path / "raw.npz"), "-o", str(out)]) == 2   # exists
