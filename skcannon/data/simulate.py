"""Simulated labelled spectra from a trained model, with realistic noise and bad pixels.

Noise: per-pixel sigma = (relative error shape of a real apStar spectrum, median 1) / SNR;
the model's intrinsic scatter s^2 is added too. Bad pixels: the bitmask (and so the masked
pixels) of the same real spectrum. Labels: real label tables (the DR12 giants, see
:mod:`skcannon.apogee.label_tables`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skcannon.spectra import FLUX, IVAR, MASK, stack_spectra


@dataclass(frozen=True)
class NoiseTemplates:
    """Relative error shapes and bitmasks of real spectra on a model's grid.

    Attributes
    ----------
    relative_error : ndarray of shape (n_templates, n_pixels)
        sigma / flux with median 1 over good pixels (inf where masked).
    pixmask : ndarray of int64, shape (n_templates, n_pixels)
        The real spectra's bitmasks.
    """

    relative_error: np.ndarray
    pixmask: np.ndarray


def noise_templates_from_apstar(paths: Sequence[str | Path]) -> NoiseTemplates:
    """Noise templates from real apStar files (see :func:`noise_templates`).

    Parameters
    ----------
    paths : sequence of str or path-like
        apStar files.

    Returns
    -------
    NoiseTemplates
        One template per spectrum.
    """
    from skcannon.apogee.reader import read_apstar

    return noise_templates([read_apstar(p) for p in paths])


def noise_templates(spectra) -> NoiseTemplates:
    """Noise templates from read apStar spectra (masked and resampled to the 7214-px grid
    with APOGEE's default bad bits and grids, :mod:`skcannon.apogee.preprocessor`).

    Parameters
    ----------
    spectra : sequence of ApStarSpectrum
        Read apStar spectra (:func:`skcannon.apogee.reader.read_apstar`).

    Returns
    -------
    NoiseTemplates
        One template per spectrum.
    """
    from skcannon.apogee.preprocessor import apogee_masker, apogee_regridder
    from skcannon.apogee.reader import stack_apstar

    X = stack_apstar(spectra)
    return noise_templates_from_regridded(
        apogee_regridder().fit().transform(apogee_masker().fit(X).transform(X)))


def noise_templates_from_regridded(X: np.ndarray) -> NoiseTemplates:
    """Noise templates from spectra already masked and regridded onto the model grid.

    Parameters
    ----------
    X : ndarray of shape (n_stars, 3, n_pixels)
        Flux, inverse variance, bitmask (e.g. ``NormalizedSpectra.regridded``).

    Returns
    -------
    NoiseTemplates
        One template per spectrum.
    """
    good = X[:, IVAR] > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(good & (X[:, FLUX] > 0),
                            1 / np.sqrt(np.where(good, X[:, IVAR], 1)) / X[:, FLUX], np.inf)
    relative /= np.nanmedian(np.where(np.isfinite(relative), relative, np.nan), axis=1,
                          keepdims=True)
    return NoiseTemplates(relative, X[:, MASK].astype(np.int64))


def simulate_spectra(
    model, labels, snr: float | np.ndarray, rng: np.random.Generator,
    templates: NoiseTemplates | None = None, include_scatter: bool = True,
) -> np.ndarray:
    """Noisy normalized spectra drawn from ``model`` at ``labels``.

    Parameters
    ----------
    model : Cannon
        Fitted.
    labels : array_like of shape (n_stars, n_labels), or DataFrame
        Physical labels.
    snr : float or ndarray of shape (n_stars,)
        Median S/N per pixel.
    rng : numpy.random.Generator
    templates : NoiseTemplates, default=None
        Real error shapes and bad-pixel masks (one picked at random per star); without them the
        noise is flat and only the model's excluded pixels are masked.
    include_scatter : bool, default=True
        Add the model's intrinsic scatter.

    Returns
    -------
    ndarray of shape (n_stars, 3, n_pixels)
        Flux, inverse variance (0 at masked pixels, whose flux is 1) and bitmask.
    """
    mean = model.predict(labels)
    n, p = mean.shape
    snr = np.broadcast_to(np.asarray(snr, float), (n,))
    if templates is None:
        relative = np.ones((n, p))
        pixmask = np.zeros((n, p), dtype=np.int64)
    else:
        if templates.relative_error.shape[1] != p:
            raise ValueError(f"noise templates have {templates.relative_error.shape[1]} pixels; "
                             f"the model has {p}")
        pick = rng.integers(0, len(templates.relative_error), n)
        relative = templates.relative_error[pick]
        pixmask = templates.pixmask[pick]
    sigma = relative / snr[:, None]
    good = np.isfinite(sigma) & model.pixel_mask_[None, :]
    flux = mean + rng.standard_normal((n, p)) * np.where(good, sigma, 0.0)
    if include_scatter:
        flux += rng.standard_normal((n, p)) * np.sqrt(model.s2_)[None, :]
    ivar = np.where(good, 1.0 / np.where(good, sigma, 1.0) ** 2, 0.0)
    flux = np.where(good, flux, 1.0)
    return stack_spectra(flux, ivar, pixmask=pixmask)


def simulate_raw_spectra(
    model, labels, snr: float | np.ndarray, rng: np.random.Generator,
    apstar_paths: Sequence[str | Path], continuum_pixels,
) -> np.ndarray:
    """Raw-like apStar spectra (8575 px): normalized model spectra times the pseudo-continuum of
    a real star, with that star's error shape and APOGEE_PIXMASK, at the given SNR.

    Lets the whole Pipeline (masking -> regridding -> normalization -> Cannon) run on many
    labelled spectra. The model must be on the 7214-pixel grid (the apStar pixels it covers are
    filled; the rest get flux 0 and inverse variance 0, as chip gaps in apStar files do).

    Parameters
    ----------
    model : Cannon
        Fitted, on the 7214-pixel grid.
    labels : array_like of shape (n_stars, n_labels), or DataFrame
        Physical labels.
    snr : float or ndarray of shape (n_stars,)
        Median S/N per pixel.
    rng : numpy.random.Generator
    apstar_paths : sequence of str or path-like
        Real apStar files; one is picked at random per star.
    continuum_pixels : ndarray of bool, shape (7214,)
        The continuum pixels of the preprocessing's ``ContinuumNormalizer``.

    Returns
    -------
    ndarray of shape (n_stars, 3, n_raw_pixels)
        Flux, inverse variance, and the picked real star's APOGEE_PIXMASK, on the apStar grid
        of the real files (8575 pixels).
    """
    from skcannon.apogee.reader import read_apstar, stack_apstar
    from skcannon.data.build import default_preprocessor

    real = [read_apstar(p) for p in apstar_paths]
    X_real = stack_apstar(real)
    pre = default_preprocessor(continuum_pixels).fit(X_real)
    regridded = pre[:-1].transform(X_real)
    _, continuum = pre[-1].normalize(regridded)                 # (m, 7214)
    index = pre[1].left_                                        # apStar pixel of each target
    normalized = simulate_spectra(model, labels, snr, rng, NoiseTemplates(
        relative_error=np.where(regridded[:, IVAR] > 0, 1.0, np.inf),
        pixmask=np.zeros_like(regridded[:, MASK], dtype=np.int64)))
    n = normalized.shape[0]
    pick = rng.integers(0, len(real), n)
    flux = np.zeros((n, X_real.shape[2]))
    ivar = np.zeros_like(flux)
    flux[:, index] = normalized[:, FLUX] * continuum[pick]
    ivar[:, index] = normalized[:, IVAR] / continuum[pick] ** 2
    pixmask = X_real[pick, MASK].astype(np.int64)
    return stack_spectra(flux, ivar, pixmask=pixmask)
