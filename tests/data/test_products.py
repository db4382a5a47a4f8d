"""Every spectrum product read from the real shared files, identified from its HDUs, and
prepared for a model: apStar (DR17, DR13, DR14 single visit), aspcapStar, apVisit, arrays."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from skcannon.apogee.visit import read_apvisit
from skcannon.data.build import default_preprocessor, normalize_spectra
from skcannon.data.products import (
    identify_product,
    prepare_for_model,
    read_product,
    visit_on_apstar_grid,
)
from skcannon.errors import BadFileError
from skcannon.spectra import IVAR
from tests.conftest import CONTINUUM_FILE, SHARED_APOGEE, shared_file

GIANT = "2M17334253-1654573"


def _files(pattern: str, folder: str) -> list:
    files = sorted((SHARED_APOGEE / folder).rglob(pattern))
    if not files:
        pytest.skip(f"no {pattern} under {SHARED_APOGEE / folder}")
    return files


@pytest.mark.parametrize("folder, pattern, product", [
    ("dr17", "apStar-dr17-*.fits", "apStar"),
    ("dr13/stars", "apStar-r6-*.fits", "apStar"),
    ("mystery", "*.fits", "apStar"),
    ("dr13/aspcap", "aspcapStar-*.fits", "aspcapStar"),
    ("visits", "apVisit-*.fits", "apVisit"),
])
def test_each_real_product_is_identified_from_its_hdus(folder, pattern, product):
    for path in _files(pattern, folder):
        assert identify_product(path.read_bytes(), str(path)) == product, path
        spectra = read_product(path)
        assert spectra.product == product and len(spectra) == 1
        assert spectra.X.shape == (1, 3, 8575) and spectra.ids[0].startswith("2M")
        assert np.mean(spectra.X[0, IVAR] > 0) > 0.3        # usable pixels read
        assert spectra.normalized == (product == "aspcapStar")


def test_normalized_arrays_one_and_several_spectra():
    one = read_product(shared_file("apogee", "normalized", "aspcap_grid_2M13012770+5754582.npz"))
    assert one.product == "normalized" and one.X.shape == (1, 3, 7214)
    assert one.ids == ["2M13012770+5754582"] and np.isclose(one.wavelength[0], 15168.13, atol=0.1)
    visits = read_product(shared_file("apogee", "normalized",
                                      "aspcap_grid_visits_2M06133561+2433362.npz"))
    assert visits.X.shape == (3, 3, 7214)
    assert np.all(visits.snr > 50)                          # the file's snrs array


def test_a_file_of_another_product_or_none_is_refused_by_name(tmp_path):
    visit = _files("apVisit-*.fits", "visits")[0]
    with pytest.raises(BadFileError, match=r"is an apVisit file, not apStar \(--product\)"):
        read_product(visit, product="apStar")
    from astropy.io import fits

    other = tmp_path / "image.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((5, 100), np.float32))]
                 ).writeto(other)
    with pytest.raises(BadFileError, match="image.fits: is none of the products"):
        read_product(other)
    text = tmp_path / "notes.fits"
    text.write_text("not FITS at all")
    with pytest.raises(BadFileError, match="notes.fits: not a FITS file"):
        read_product(text)
    grid = tmp_path / "odd.npz"
    np.savez(grid, flux=np.ones((2, 100)), flux_err=np.full((2, 100), 0.01))
    with pytest.raises(BadFileError, match="100 pixels without a 'wavelength'"):
        read_product(grid)


def test_truncated_apvisit_is_refused(tmp_path):
    visit = _files("apVisit-*.fits", "visits")[0]
    cut = tmp_path / visit.name
    cut.write_bytes(visit.read_bytes()[:-5000])
    with pytest.raises(BadFileError, match="truncated"):
        read_product(cut)


def test_apvisit_chips_resampled_separately_and_gaps_masked():
    visit = read_apvisit(_files("apVisit-*.fits", "visits")[0])
    X = visit_on_apstar_grid(visit)
    from skcannon.apogee.grids import apstar_wavelength

    wavelength = apstar_wavelength()
    rest = visit.rest_wavelength
    covered = np.zeros(wavelength.size, bool)
    for chip in rest:
        covered |= (wavelength >= chip.min()) & (wavelength <= chip.max())
    assert np.all(X[0, IVAR][~covered] == 0)               # between and beyond the chips
    assert np.mean(X[0, IVAR][covered] > 0) > 0.8
    # a pixel in the middle of a chip is the interpolation of the visit's own pixels
    chip = 1
    order = np.argsort(rest[chip])
    k = np.searchsorted(wavelength, np.median(rest[chip]))
    expected = np.interp(np.log(wavelength[k]), np.log(rest[chip][order]),
                         visit.flux[chip][order])
    assert np.isclose(X[0, 0, k], expected, rtol=1e-9)


def test_apvisit_rest_frame_shift_is_what_makes_the_model_fit(reference_model):
    """Without the VRAD shift (~10 apStar pixels) the giant model fits the visits far worse."""
    preprocessor = default_preprocessor(CONTINUUM_FILE)
    for path in _files("apVisit-*.fits", "visits"):
        visit = read_apvisit(path)
        assert abs(visit.vrad) > 20
        shifted = normalize_spectra(visit_on_apstar_grid(visit), preprocessor).normalized
        unshifted = normalize_spectra(visit_on_apstar_grid(dataclasses.replace(visit, vrad=0.0)),
                                      preprocessor).normalized
        good, bad = (reference_model.infer_labels(X) for X in (shifted, unshifted))
        assert good.reduced_chi2[0] < 3 and bad.reduced_chi2[0] > 1.5 * good.reduced_chi2[0]


def test_the_giant_from_apstar_and_aspcapstar_gets_the_same_labels(reference_model):
    apstar = [p for p in _files("apStar-r6-*.fits", "dr13/stars") if GIANT in p.name]
    aspcap = [p for p in _files("aspcapStar-*.fits", "dr13/aspcap") if GIANT in p.name]
    if not (apstar and aspcap):
        pytest.skip(f"{GIANT} files absent")
    spectra = [read_product(apstar[0]), read_product(aspcap[0])]
    fit = reference_model.infer_labels(prepare_for_model(spectra,
                                                         default_preprocessor(CONTINUUM_FILE)))
    assert np.all(fit.confident)
    teff, logg = fit.labels[:, 0], fit.labels[:, 1]
    assert abs(teff[0] - teff[1]) < 30 and abs(logg[0] - logg[1]) < 0.05
    assert abs(teff[0] - 3788) < 100                        # ASPCAP: 3788 K


def test_prepare_for_model_keeps_input_order_across_products():
    files = (_files("apStar-dr17-*.fits", "dr17")[:1] + _files("aspcapStar-*.fits",
                                                                 "dr13/aspcap")[:1]
             + _files("apVisit-*.fits", "visits")[:1])
    normalized = shared_file("apogee", "normalized", "aspcap_grid_visits_2M06133561+2433362.npz")
    spectra = [read_product(f) for f in (files[0], normalized, files[1], files[2])]
    preprocessor = default_preprocessor(CONTINUUM_FILE)
    together = prepare_for_model(spectra, preprocessor)
    alone = np.concatenate([prepare_for_model([s], preprocessor) for s in spectra])
    assert together.shape == (6, 3, 7214)
    np.testing.assert_allclose(together, alone, rtol=1e-12, atol=1e-9)   # batched BLAS sums
    # the normalized arrays on the model's grid come through unchanged (masking only)
    np.testing.assert_array_equal(together[1:4, 0], spectra[1].X[:, 0])


def test_applying_a_fitted_preprocessing_does_not_refit_it():
    """A loaded model's preprocessing is applied as it is (the model is not changed by use), and
    gives what fitting it on the batch gives."""
    spectra = [read_product(f) for f in _files("apStar-dr17-*.fits", "dr17")]
    fitted = default_preprocessor(CONTINUUM_FILE).fit(np.concatenate([s.X for s in spectra]))
    state = {name: dict(vars(step)) for name, step in fitted.steps}
    applied = prepare_for_model(spectra, fitted)
    for name, step in fitted.steps:           # the very same fitted attributes, not new ones
        assert all(vars(step)[key] is value for key, value in state[name].items()), name
    np.testing.assert_array_equal(applied, prepare_for_model(spectra,
                                                             default_preprocessor(CONTINUUM_FILE)))


def test_normalized_on_the_apstar_grid_is_regridded(tmp_path):
    aspcap = read_product(_files("aspcapStar-*.fits", "dr13/aspcap")[0])
    arrays = tmp_path / "on_apstar_grid.npz"
    error = np.where(aspcap.X[0, IVAR] > 0, 1 / np.sqrt(np.maximum(aspcap.X[0, IVAR], 1e-30)),
                     1.0)
    np.savez(arrays, spectrum=aspcap.X[0, 0], spec_err=error)
    from_arrays = read_product(arrays)
    assert from_arrays.X.shape == (1, 3, 8575)
    preprocessor = default_preprocessor(CONTINUUM_FILE)
    a, b = prepare_for_model([aspcap], preprocessor), prepare_for_model([from_arrays],
                                                                        preprocessor)
    assert a.shape == b.shape == (1, 3, 7214)
    np.testing.assert_allclose(a[:, 0], b[:, 0])
    np.testing.assert_array_equal(a[:, IVAR] > 0, b[:, IVAR] > 0)


def test_fit_command_on_spectrum_files_of_any_product(reference_model, tmp_path, capsys):
    from skcannon.cli import main

    model = reference_model.save(tmp_path / "model.h5")
    visits = [str(p) for p in _files("apVisit-*.fits", "visits")]
    aspcap = [str(p) for p in _files("aspcapStar-*.fits", "dr13/aspcap") if GIANT in p.name]
    out = tmp_path / "labels.csv"
    assert main(["fit", *visits, *aspcap, "--model", str(model), "-o", str(out)]) == 0
    import pandas as pd

    table = pd.read_csv(out)
    assert list(table.PRODUCT) == ["apVisit"] * len(visits) + ["aspcapStar"] * len(aspcap)
    assert table.CONFIDENT.all()
    text = capsys.readouterr().out
    assert "note: the model does not record its preprocessing" in text
    assert main(["fit", visits[0], "--product", "apStar", "--model", str(model), "-o",
                 str(tmp_path / "wrong.csv")]) == 0
    assert "is an apVisit file, not apStar (--product)" in capsys.readouterr().out


def test_the_digest_is_recorded_unless_asked_not_to():
    import hashlib

    for path in (_files("apStar-dr17-*.fits", "dr17")[0], _files("apVisit-*.fits", "visits")[0],
                 _files("aspcapStar-*.fits", "dr13/aspcap")[0]):
        full, quick = read_product(path), read_product(path, digest=False)
        assert full.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert quick.sha256 == "" and quick.product == full.product
        np.testing.assert_array_equal(quick.X, full.X)
