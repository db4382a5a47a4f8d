"""The independent spectrum generator reproduces its documented formula and refuses other files."""

import numpy as np
import pytest

from skcannon.data.emulator import SpectrumEmulator
from skcannon.errors import BadFileError


def test_flux_matches_the_per_star_formula(emulator):
    labels = emulator.sample_labels(3, seed=1)
    flux = emulator.flux(labels)
    assert flux.shape == (3, emulator.n_pixels)
    for row, star in zip(flux, labels, strict=True):
        s = (star - emulator.label_min) / (emulator.label_max - emulator.label_min) - 0.5
        inside = np.einsum("pjk,k->pj", emulator.w0, s) + emulator.b0
        expected = np.einsum("pj,pj->p", emulator.w1, 1 / (1 + np.exp(-inside))) + emulator.b1
        np.testing.assert_allclose(row, expected, rtol=1e-12)
    np.testing.assert_allclose(emulator.flux(labels[0]), flux[0], rtol=1e-12)
    # normalized spectra of FGK dwarfs: mostly near 1, lines below it
    assert 0.9 < np.median(flux) < 1.05 and flux.min() < 0.8


def test_labels_are_inside_the_range(emulator):
    labels = emulator.sample_labels(200, seed=2, margin=0.1)
    span = emulator.label_max - emulator.label_min
    assert np.all(labels >= emulator.label_min + 0.1 * span - 1e-9)
    assert np.all(labels <= emulator.label_max - 0.1 * span + 1e-9)


def test_another_npz_is_refused(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(BadFileError, match="not an emulator file"):
        SpectrumEmulator.from_npz(path)
