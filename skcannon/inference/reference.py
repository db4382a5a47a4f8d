"""The reference (slow) label-fitting path: scipy's least_squares(method="trf") star by star,
with the same chi^2, bounds and analytic Jacobian as the batched path. For checking.

With error factors U (pixel covariance C = W^-1 + U U^T) the fit also solves for r latent
factor amplitudes z with residuals [sqrt(W) (f - model - U z), z]: minimizing over z gives
exactly r^T C^-1 r (the marginal chi^2), so the labels are those of the full covariance."""

from __future__ import annotations

import dataclasses
from typing import TextIO

import numpy as np

from skcannon.inference.fitting import LabelFit, fit_labels
from skcannon.inference.progress import progress_line, progress_stream, report_every


def fit_labels_reference(state, flux: np.ndarray, ivar: np.ndarray, *, n_starts: int = 0,
                         margin: float = 0.1, seed: int = 0,
                         progress: TextIO | None = None) -> LabelFit:
    """The "trf" label-fitting method: labels and chi^2 from :func:`fit_labels_trf`, the other
    fields (covariances, flags) from the batched fit without spread starts.

    Parameters
    ----------
    state : CannonState
        The model's learned state (see :func:`skcannon.inference.fitting.fit_labels`).
    flux, ivar : ndarray, shape (n_stars, n_pixels)
        Normalized spectra on the model's grid.
    n_starts, seed : int, default=0
        Unused: TRF starts from the training mean (accepted as every method is called).
    margin : float, default=0.1
        Bounds: the training label range widened by this fraction on each side.
    progress : text stream, optional
        Progress lines of the star-by-star fits (see :func:`fit_labels_trf`).

    Returns
    -------
    LabelFit
        Labels and chi^2 only are meaningful beyond those of the batched path.
    """
    result = fit_labels(state, flux, ivar, n_starts=0, margin=margin)
    labels, chi2 = fit_labels_trf(state, flux, ivar, margin=margin, progress=progress)
    return dataclasses.replace(result, labels=labels, chi2=chi2, reduced_chi2=chi2 / np.maximum(
        result.n_good - len(state.label_names), 1))


def fit_labels_trf(state, flux: np.ndarray, ivar: np.ndarray, *,
                   start: np.ndarray | None = None, margin: float = 0.1,
                   progress: TextIO | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-star TRF fits.

    Parameters
    ----------
    state : CannonState
        The model's learned state (see :func:`skcannon.inference.fitting.fit_labels`).
    flux, ivar : ndarray, shape (n_stars, n_pixels)
        Normalized spectra on the model's grid.
    start : ndarray, shape (n_stars, L), optional
        Physical starting labels (default: the training mean).
    margin : float, default=0.1
        Bounds: the training label range widened by this fraction on each side.
    progress : text stream, optional
        Where to write a line ``"fit (trf): star 30/600"`` after every batch of stars (about
        :data:`~skcannon.inference.progress.PROGRESS_LINES` lines, and the last star); default:
        the stream of an enclosing :func:`~skcannon.inference.progress.show_progress` block,
        else none (quiet).

    Returns
    -------
    labels : ndarray, shape (n_stars, L)
        Physical units.
    chi2 : ndarray, shape (n_stars,)
    """
    vectorizer, scaling = state.vectorizer, state.scaling
    lower, upper = (scaling.scale(bound)[0] for bound in state.label_bounds(margin))
    starts = (np.zeros((len(flux), vectorizer.n_labels)) if start is None
              else scaling.scale(start))
    labels, chi2 = [], []
    stream, every = progress_stream(progress), report_every(len(flux))
    for done, (f, iv, x0) in enumerate(zip(flux, ivar, starts, strict=True), start=1):
        x, cost = _trf_star(state, f, iv, np.clip(x0, lower, upper), (lower, upper))
        labels.append(x)
        chi2.append(2 * cost)
        if stream is not None and (done % every == 0 or done == len(flux)):
            progress_line("fit (trf): star", done, len(flux), stream=stream)
    return scaling.unscale(np.array(labels)), np.array(chi2)


def _trf_star(state, f: np.ndarray, iv: np.ndarray, x0: np.ndarray,
              bounds: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, float]:
    """One star's TRF fit from ``x0`` (scaled labels, inside ``bounds``): its scaled labels
    (L,) and least_squares' cost (half its chi^2)."""
    from scipy.optimize import least_squares

    vectorizer, factors = state.vectorizer, state.error_factors
    n_labels, r = vectorizer.n_labels, 0 if factors is None else factors.shape[1]
    low = np.concatenate([bounds[0], np.full(r, -np.inf)])
    high = np.concatenate([bounds[1], np.full(r, np.inf)])
    good = (iv > 0) & state.pixel_mask
    sqrt_w = np.sqrt(1.0 / (1.0 / iv[good] + state.s2[good]))
    theta = state.theta[good]
    U = np.zeros((good.sum(), 0)) if factors is None else factors[good]

    def residuals(p, f=f[good]):
        model_flux = theta @ vectorizer.design_matrix(p[None, :n_labels])[0]
        return np.concatenate([sqrt_w * (f - model_flux - U @ p[n_labels:]), p[n_labels:]])

    def jacobian(p):
        top = -sqrt_w[:, None] * np.hstack(
            [theta @ vectorizer.jacobian(p[None, :n_labels])[0], U])
        bottom = np.hstack([np.zeros((r, n_labels)), np.eye(r)])
        return np.vstack([top, bottom])

    result = least_squares(residuals, np.concatenate([x0, np.zeros(r)]), jac=jacobian,
                           bounds=(low, high), method="trf", x_scale="jac")
    return result.x[:n_labels], result.cost
