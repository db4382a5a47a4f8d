"""The reference (slow) label-fitting path: scipy's least_squares(method="trf") star by star,
with the same chi^2, bounds and analytic Jacobian as the batched path. For checking.

With error factors U (pixel covariance C = W^-1 + U U^T) the fit also solves for r latent
factor amplitudes z with residuals [sqrt(W) (f - model - U z), z]: minimizing over z gives
exactly r^T C^-1 r (the marginal chi^2), so the labels are those of the full covariance."""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares


def fit_labels_trf(model, flux: np.ndarray, ivar: np.ndarray, *, start: np.ndarray | None = None,
                   margin: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Per-star TRF fits.

    Parameters
    ----------
    start : ndarray (n_stars, L), optional
        Physical starting labels (default: the training mean).

    Returns
    -------
    labels (n_stars, L) physical, chi2 (n_stars,)
    """
    vectorizer, scaling = model.vectorizer_, model.scaling_
    lower, upper = (scaling.scale(bound)[0] for bound in model.label_bounds(margin))
    starts = (np.zeros((len(flux), vectorizer.n_labels)) if start is None
              else scaling.scale(start))
    factors = getattr(model, "error_factors_", None)
    n_labels, r = vectorizer.n_labels, 0 if factors is None else factors.shape[1]
    low = np.concatenate([lower, np.full(r, -np.inf)])
    high = np.concatenate([upper, np.full(r, np.inf)])
    labels, chi2 = [], []
    for f, iv, x0 in zip(flux, ivar, starts, strict=True):
        good = (iv > 0) & model.pixel_mask_
        sqrt_w = np.sqrt(1.0 / (1.0 / iv[good] + model.s2_[good]))
        theta = model.theta_[good]
        U = np.zeros((good.sum(), 0)) if factors is None else factors[good]

        def residuals(p, f=f[good], sqrt_w=sqrt_w, theta=theta, U=U):
            model_flux = theta @ vectorizer.design_matrix(p[None, :n_labels])[0]
            return np.concatenate([sqrt_w * (f - model_flux - U @ p[n_labels:]), p[n_labels:]])

        def jacobian(p, sqrt_w=sqrt_w, theta=theta, U=U):
            top = -sqrt_w[:, None] * np.hstack(
                [theta @ vectorizer.jacobian(p[None, :n_labels])[0], U])
            bottom = np.hstack([np.zeros((r, n_labels)), np.eye(r)])
            return np.vstack([top, bottom])

        result = least_squares(residuals, np.concatenate([np.clip(x0, lower, upper),
                                                          np.zeros(r)]),
                               jac=jacobian, bounds=(low, high), method="trf", x_scale="jac")
        labels.append(result.x[:n_labels])
        chi2.append(2 * result.cost)
    return scaling.unscale(np.array(labels)), np.array(chi2)
