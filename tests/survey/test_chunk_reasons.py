"""Why a read spectrum cannot be fitted, computed in one batch per spectrum length: the same
reasons, in input order, as spectrum by spectrum, for chunks mixing products of two lengths."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from skcannon.survey.chunk import _raw_reasons, _usable_flux, unfittable_reasons


def _spectrum(n_pixels: int, kind: str, seed: int) -> SimpleNamespace:
    rng = np.random.default_rng(seed)
    X = np.stack([rng.uniform(0.5, 1.5, n_pixels), np.full(n_pixels, 100.0),
                  np.zeros(n_pixels)])[None]
    if kind == "nan":
        X[0, 0] = np.nan
    elif kind == "masked":
        X[0, 1] = 0.0
    elif kind == "negative":
        X[0, 0] = -X[0, 0]
    return SimpleNamespace(X=X)


def test_batched_reasons_equal_the_reasons_spectrum_by_spectrum():
    kinds = ["ok", "nan", "masked", "negative", "ok"]
    for lengths in ([50] * 5, [50, 80, 50, 80, 80]):      # one product, then two mixed
        spectra = [_spectrum(n, kind, seed) for seed, (n, kind)
                   in enumerate(zip(lengths, kinds, strict=True))]
        expected = np.concatenate([unfittable_reasons(_usable_flux(s.X)) for s in spectra])
        got = _raw_reasons(spectra)
        assert got.tolist() == expected.tolist()
        assert got[0] == "" and got[4] == "" and "no finite flux" in got[1]
        assert "no usable pixel" in got[2] and "zero or negative" in got[3]


def _median_reasons(flux: np.ndarray) -> np.ndarray:
    """The reasons as the sorted median decides them (the definition the counting follows)."""
    usable = np.isfinite(flux)
    some = usable.any(axis=1)
    median = np.full(len(flux), np.nan)
    median[some] = np.nanmedian(np.where(usable, flux, np.nan)[some], axis=1)
    return np.where(~some, "none", np.where(median > 0, "", "negative"))


def test_counting_decides_the_median_sign_exactly():
    # rows with ties (2p = n), zeros, +-inf (finite but unusable) and NaN, even and odd n
    rng = np.random.default_rng(3)
    values = np.array([-2.0, -1.0, -0.0, 0.0, 0.5, 1.0, 3.0, np.inf, np.nan])
    flux = rng.choice(values, size=(4000, rng.integers(1, 9)))
    flux[:5] = [[-1.0, 1.0] * (flux.shape[1] // 2) + [np.nan] * (flux.shape[1] % 2)] * 5
    flux[5] = -3.0
    flux[5, 0] = 5.0                                     # a tie whose mean is positive
    flux[6], flux[7] = np.nan, np.inf                    # nothing finite; nothing usable
    got = unfittable_reasons(flux)
    expected = _median_reasons(flux)
    short = np.where(got == "", "", np.where(np.char.find(got.astype(str), "zero or") >= 0,
                                             "negative", "none"))
    assert short.tolist() == expected.tolist()
    assert {"", "negative", "none"} <= set(short.tolist())
