"""The preprocessing transformers: scikit-learn contract, properties, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.polynomial import chebyshev
from sklearn.base import clone
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from skcannon.apogee import apogee_masker, apogee_normalizer, apogee_regridder
from skcannon.apogee.grids import CHIP_WAVELENGTH_RANGES, apstar_wavelength, aspcap_dr12_wavelength
from skcannon.preprocessing import BitmaskMasker, ContinuumNormalizer, Regridder
from skcannon.spectra import (
    BIT_CONTINUUM_TOO_FEW,
    BIT_REGRID_MASKED,
    FLUX,
    IVAR,
    MASK,
    has_bit,
    stack_spectra,
)
from tests.conftest import CONTINUUM_FILE, CONTRACT_CHECKS, SHARED_APOGEE, run_contract_check

# scikit-learn's generic checks feed 2-D arrays of random size; our transformers take
# (n_stars, 3, n_pixels) spectra on a fixed wavelength grid, so scikit-learn itself skips every
# check that fits or transforms data (its three_d_array tag). parametrize_with_checks runs what
# remains; the checks below, about construction, parameters and cloning, apply and run too.
TRANSFORMERS = [BitmaskMasker(), Regridder(apstar_wavelength(), aspcap_dr12_wavelength()),
                ContinuumNormalizer(CONTINUUM_FILE, wavelength=aspcap_dr12_wavelength())]


@parametrize_with_checks(TRANSFORMERS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", TRANSFORMERS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("check_name", CONTRACT_CHECKS)
def test_sklearn_contract_checks(estimator, check_name):
    run_contract_check(estimator, check_name)


def same_params(a: dict, b: dict) -> bool:
    """Parameter dicts equal, arrays compared by value (``==`` on arrays is elementwise)."""
    return a.keys() == b.keys() and all(
        np.array_equal(a[k], b[k]) if isinstance(a[k], np.ndarray) else a[k] == b[k] for k in a)


def test_params_clone_and_pipeline_composition(continuum_file):
    normalizer = ContinuumNormalizer(continuum_pixels=continuum_file, order=2, basis="sincos",
                                     wavelength=aspcap_dr12_wavelength())
    twin = clone(normalizer)
    assert same_params(twin.get_params(), normalizer.get_params())
    pipe = make_pipeline(BitmaskMasker(bad_bits=(0, 1)), apogee_regridder(), normalizer)
    pipe.set_params(continuumnormalizer__order=4)
    assert pipe[-1].order == 4
    assert pipe.get_params()["bitmaskmasker__bad_bits"] == (0, 1)


def test_default_regrid_is_exact_pixel_selection():
    regridder = apogee_regridder().fit()
    np.testing.assert_allclose(regridder.wavelength_, aspcap_dr12_wavelength())
    shared = SHARED_APOGEE / "continuum" / "apogee_wavelength.npz"
    if shared.is_file():
        np.testing.assert_allclose(regridder.wavelength_,
                                   np.load(shared)["wavelength"], rtol=1e-12)
    assert set(np.unique(regridder.weight_)) == {0.0}
    rng = np.random.default_rng(0)
    X = stack_spectra(rng.normal(1, 0.1, (4, 8575)), rng.uniform(1, 2, (4, 8575)))
    out = regridder.transform(X)
    source = apstar_wavelength()
    index = np.searchsorted(source, regridder.wavelength_ * (1 - 1e-12))
    np.testing.assert_array_equal(out[:, FLUX], X[:, FLUX][:, index])
    np.testing.assert_allclose(out[:, IVAR], X[:, IVAR][:, index])


def test_regrid_never_uses_masked_neighbour():
    source = np.linspace(15000, 15100, 101)
    target = source[:-1] + 0.37
    rng = np.random.default_rng(1)
    flux = rng.normal(1, 0.05, (3, 101))
    ivar = np.full((3, 101), 100.0)
    ivar[:, [10, 50]] = 0.0
    out = Regridder(source, target_wavelength=target).fit().transform(stack_spectra(flux, ivar))
    masked = out[:, IVAR] == 0
    # target pixels between 9-10, 10-11, 49-50, 50-51 draw on a masked pixel
    assert set(np.flatnonzero(masked[0])) == {9, 10, 49, 50}
    assert np.all(has_bit(out[:, MASK][:, [9, 10, 49, 50]], BIT_REGRID_MASKED))
    w = (np.log(target[0]) - np.log(source[0])) / (np.log(source[1]) - np.log(source[0]))
    expected_var = ((1 - w) ** 2 + w**2) / 100.0
    np.testing.assert_allclose(out[0, IVAR, 0], 1 / expected_var)


def test_regrid_outside_source_is_masked():
    source = np.linspace(15200, 15300, 50)
    target = np.array([15100.0, 15250.0, 15400.0])
    out = Regridder(source, target_wavelength=target).fit().transform(
        stack_spectra(np.ones((1, 50)), np.ones((1, 50))))
    assert out[0, IVAR].tolist()[0] == 0 and out[0, IVAR][1] > 0 and out[0, IVAR][2] == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 2**15 - 1), min_size=20, max_size=20),
       st.lists(st.floats(0, 10), min_size=20, max_size=20),
       st.sets(st.integers(0, 14), max_size=5))
def test_masking_never_unmasks(bits_in, ivar_in, bad_bits):
    ivar = np.array(ivar_in)
    X = stack_spectra(np.ones((1, 20)), ivar[None], pixmask=np.array(bits_in)[None])
    out = BitmaskMasker(bad_bits=tuple(bad_bits)).fit(X).transform(X)
    assert np.all(out[0, IVAR][ivar == 0] == 0)
    flagged = [any((b >> k) & 1 for k in bad_bits) for b in bits_in]
    assert np.all(out[0, IVAR][flagged] == 0)
    assert np.all(out[0, IVAR] <= ivar)


def test_masker_handles_nan_inf_negative_and_leaves_input_alone():
    X = stack_spectra(np.array([[1.0, np.nan, np.inf, 1.0, 1.0]]),
                      np.array([[1.0, 1.0, 1.0, -4.0, np.nan]]))
    before = X.copy()
    out = BitmaskMasker().fit(X).transform(X)
    np.testing.assert_array_equal(X, before)
    assert out[0, IVAR].tolist() == [1.0, 0, 0, 0, 0]
    assert np.isfinite(out).all()


def test_wrong_shapes_are_clear():
    with pytest.raises(ValueError, match=r"shape \(n_stars, 3, n_pixels\)"):
        BitmaskMasker().fit(np.ones((3, 100)))
    with pytest.raises(ValueError, match="8000 pixels per spectrum; this step expects 8575"):
        apogee_regridder().fit().transform(np.ones((2, 3, 8000)))
    with pytest.raises(ValueError, match="needs continuum_pixels"):
        ContinuumNormalizer(None, wavelength=aspcap_dr12_wavelength()).fit()


def synthetic_normalized(rng, n_stars=3):
    """Normalized spectra: 1 at continuum pixels, absorption lines elsewhere."""
    cont = np.load(CONTINUUM_FILE)["pixels_cannon"]
    lines = 1 - 0.3 * rng.random((n_stars, cont.size)) ** 4
    lines[:, cont] = 1.0
    return lines, cont


def chip_polynomial(wavelength, coefficients):
    out = np.ones_like(wavelength)
    for (lo, hi), coef in zip(CHIP_WAVELENGTH_RANGES.values(), coefficients, strict=True):
        on = (wavelength >= lo) & (wavelength < hi)
        out[on] = chebyshev.chebval(2 * (wavelength[on] - lo) / (hi - lo) - 1, coef)
    return out


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(1.0, 100.0), st.floats(-0.3, 0.3), st.floats(-0.2, 0.2),
                          st.floats(-0.1, 0.1)), min_size=3, max_size=3))
def test_normalization_removes_any_smooth_positive_continuum(coefficients):
    """Normalizing a spectrum multiplied by any smooth positive function (a cubic per chip,
    i.e. in the basis) gives back the same normalized spectrum."""
    if not CONTINUUM_FILE.is_file():
        pytest.skip("continuum file absent")
    rng = np.random.default_rng(3)
    normalized, _ = synthetic_normalized(rng, 2)
    wavelength = aspcap_dr12_wavelength()
    scaled = [c[0] * np.array([1, c[1], c[2], c[3]]) for c in coefficients]
    smooth = chip_polynomial(wavelength, scaled)
    if np.any(smooth <= 0):
        return
    X = stack_spectra(normalized * smooth, np.full(normalized.shape, 1e4) / smooth**2)
    out = apogee_normalizer(CONTINUUM_FILE).fit().transform(X)
    np.testing.assert_allclose(out[:, FLUX], normalized, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(out[:, IVAR], 1e4, rtol=1e-6)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 6))
def test_transform_of_row_slice_is_slice_of_transform(seed, n_rows):
    if not CONTINUUM_FILE.is_file():
        pytest.skip("continuum file absent")
    rng = np.random.default_rng(seed)
    normalized, _ = synthetic_normalized(rng, 6)
    flux = normalized * rng.uniform(50, 500, (6, 1)) + rng.normal(0, 1, normalized.shape)
    ivar = np.ones_like(flux)
    ivar[rng.random(flux.shape) < 0.1] = 0
    X = stack_spectra(flux, ivar, pixmask=rng.integers(0, 4, flux.shape))
    pipe = make_pipeline(apogee_masker(), apogee_normalizer(CONTINUUM_FILE)).fit(X)
    rows = rng.choice(6, n_rows, replace=False)
    # equal up to floating-point reassociation in batched BLAS calls
    np.testing.assert_allclose(pipe.transform(X[rows]), pipe.transform(X)[rows],
                               rtol=1e-12, atol=1e-12)


def test_row_indexing_keeps_channels_aligned():
    rng = np.random.default_rng(5)
    flux = rng.normal(size=(10, 50))
    ivar = rng.random((10, 50))
    mask = rng.integers(0, 1000, (10, 50))
    X = stack_spectra(flux, ivar, pixmask=mask)
    labels = np.arange(10)
    X_train, X_test, y_train, y_test = train_test_split(X, labels, test_size=0.5,
                                                        random_state=0)
    for Xs, ys in ((X_train, y_train), (X_test, y_test)):
        np.testing.assert_array_equal(Xs[:, FLUX], flux[ys])
        np.testing.assert_array_equal(Xs[:, IVAR], ivar[ys])
        np.testing.assert_array_equal(Xs[:, MASK], mask[ys])


def test_chip_with_too_few_pixels_is_flagged_not_nan(continuum_file):
    rng = np.random.default_rng(7)
    normalized, cont = synthetic_normalized(rng, 3)
    ivar = np.full(normalized.shape, 1e4)
    ivar[0] = 0.0                       # star 0: everything masked
    green = (aspcap_dr12_wavelength() >= 15830) & (aspcap_dr12_wavelength() < 16450)
    ivar[1, green & cont] = 0.0         # star 1: green chip has no continuum pixels
    X = stack_spectra(normalized * 300, ivar)
    X[2, FLUX, :10] = np.nan            # star 2: a few NaN pixels
    out = apogee_normalizer(continuum_file).fit().transform(X)
    assert np.isfinite(out).all()
    assert np.all(out[0, IVAR] == 0) and np.all(has_bit(out[0, MASK], BIT_CONTINUUM_TOO_FEW))
    assert np.all(out[1, IVAR][green] == 0) and np.all(out[1, IVAR][~green] > 0)
    assert np.all(has_bit(out[1, MASK][green], BIT_CONTINUUM_TOO_FEW))
    assert np.all(out[2, IVAR][:10] == 0) and (out[2, IVAR][10:] > 0).all()


def test_clipping_ignores_sky_line_spikes(continuum_file):
    rng = np.random.default_rng(9)
    normalized, cont = synthetic_normalized(rng, 1)
    flux = normalized * 200 + rng.normal(0, 2, normalized.shape)
    spiked = flux.copy()
    idx = np.flatnonzero(cont)[::15]
    spiked[0, idx] += 400  # residual sky lines on 1 continuum pixel in 15
    ivar = np.full(flux.shape, 0.25)
    normalizer = apogee_normalizer(continuum_file).fit()
    clean = normalizer.transform(stack_spectra(flux, ivar))
    dirty = normalizer.transform(stack_spectra(spiked, ivar))
    keep = ~np.isin(np.arange(flux.shape[1]), idx)
    np.testing.assert_allclose(dirty[0, FLUX][keep], clean[0, FLUX][keep], atol=0.003)
    unclipped = apogee_normalizer(continuum_file, max_iter=1).fit().transform(
        stack_spectra(spiked, ivar))
    assert np.abs(unclipped[0, FLUX][keep] - clean[0, FLUX][keep]).max() > 0.02


@pytest.mark.parametrize(("content", "problem"), [
    (None, "not found"), (b"not an npz file at all", "cannot be read"),
    ("wrong_key", "no 'pixels_cannon' or 'trusted'"), ("floats", "1-D boolean")])
def test_continuum_file_problems_are_bad_file_errors(tmp_path, content, problem):
    from skcannon.errors import BadFileError
    from skcannon.preprocessing import load_continuum_pixels

    path = tmp_path / "continuum.npz"
    if content == "wrong_key":
        np.savez(path, other=np.ones(5, bool))
    elif content == "floats":
        np.savez(path, pixels_cannon=np.full((2, 3), 0.5))
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(BadFileError, match=problem) as info:
        load_continuum_pixels(path)
    assert info.value.path == str(path)


def test_cli_reports_a_malformed_continuum_file_in_one_line(apstar_files, tmp_path, capsys):
    from skcannon.cli import main

    bad = tmp_path / "continuum.npz"
    bad.write_bytes(b"garbage")
    status = main(["plot-normalization", str(apstar_files[0]), "--continuum", str(bad),
                   "-o", str(tmp_path / "n.png")])
    err = capsys.readouterr().err
    assert status == 2 and "error:" in err and str(bad) in err and "Traceback" not in err


def test_exact_pixel_selection_equals_the_interpolation_with_zero_weights(apstar_files):
    """The default grids take the selection shortcut; it gives what the general interpolation
    gives with all weights 0 (inverse variances up to its 1 / (1 / ivar) rounding)."""
    from skcannon.apogee.reader import read_apstar, stack_apstar

    X = apogee_masker().fit_transform(stack_apstar([read_apstar(p) for p in apstar_files]))
    X[0, IVAR, 400:410] = 0.0                      # some masked pixels
    regridder = apogee_regridder().fit(X)
    assert not np.any(regridder.weight_ > 0)
    fast, general = regridder.transform(X), regridder._interpolate(X)
    np.testing.assert_array_equal(fast[:, FLUX], general[:, FLUX])
    np.testing.assert_array_equal(fast[:, MASK], general[:, MASK])
    np.testing.assert_allclose(fast[:, IVAR], general[:, IVAR], rtol=1e-15, atol=0)
    np.testing.assert_array_equal(fast[:, IVAR] == 0, general[:, IVAR] == 0)
    assert np.all(fast[0, IVAR][regridder.left_ == 400] == 0) and np.any(regridder.left_ == 400)
