"""chi^2 of many stars as a quadratic form in the design vector (the batched fit's core).

With the noise fixed, chi^2 of star n is an exact polynomial in its design vector v = v(l) (l
the scaled labels). Expanded around a centre v0 (a first guess):

    chi2_n(l) = c_n - 2 h_n . (v - v0) + (v - v0)^T G_n (v - v0),
    G_n = Theta^T W_n Theta (k x k),  h_n = Theta^T W_n r_n,  c_n = r_n^T W_n r_n,
    r_n = f_n - Theta v0_n  (the residuals at the centre),

with W_n = diag(1 / (sigma_np^2 + s_p^2)) over good pixels. One pass over the pixels (a matrix
product for all stars at once) gives G, h and c; every Gauss-Newton / Levenberg-Marquardt step
and every start then costs O(k^2 L) per star (see :mod:`skcannon.inference.optimize`), and every
gradient of a posterior O(k^2) (see :mod:`skcannon.inference.posterior`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SufficientStatistics:
    """Per-star quadratic form of chi^2 in the design vector.

    Attributes
    ----------
    G : ndarray, shape (n_stars, k, k)
    h : ndarray, shape (n_stars, k)
    c : ndarray, shape (n_stars,)
    n_good : ndarray of int, shape (n_stars,)
    centre : ndarray, shape (n_stars, k)  the design vectors v0 of the expansion
    """

    G: np.ndarray
    h: np.ndarray
    c: np.ndarray
    n_good: np.ndarray
    centre: np.ndarray


def factor_system(weight: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """M = I + U^T W U of every star (the r x r matrix of the Woodbury identity), one GEMM.

    Parameters
    ----------
    weight : ndarray, shape (n_stars, n_pixels)  1 / (sigma^2 + s^2), 0 at unusable pixels
    factors : ndarray, shape (n_pixels, r)  the error factors U

    Returns
    -------
    ndarray, shape (n_stars, r, r)
    """
    n_pixels, r = factors.shape
    products = (factors[:, :, None] * factors[:, None, :]).reshape(n_pixels, r * r)
    return (np.atleast_2d(weight) @ products).reshape(-1, r, r) + np.eye(r)


class StarSystems:
    """The pixel weights and G = Theta^T W Theta of every star, computed once; statistics
    around any centre then cost one more pass (:meth:`around`).

    With error factors U (n_pixels, r) the pixel covariance is C = W^-1 + U U^T and, by the
    Woodbury identity, C^-1 = W - W U M^-1 U^T W with M = I + U^T W U (r x r per star): each
    statistic loses a rank-r correction, A^T M^-1 A with A = U^T W Theta.

    Parameters
    ----------
    theta : (n_pixels, k); s2, pixel_mask : (n_pixels,); flux, ivar : (n_stars, n_pixels)
    factors : (n_pixels, r) or None
    """

    def __init__(self, theta: np.ndarray, s2: np.ndarray, pixel_mask: np.ndarray,
                 flux: np.ndarray, ivar: np.ndarray, factors: np.ndarray | None = None) -> None:
        good = (ivar > 0) & np.isfinite(ivar) & np.isfinite(flux) & pixel_mask[None, :]
        weight = np.where(good, ivar, 1.0)
        np.reciprocal(weight, out=weight)
        weight += s2[None, :]
        np.reciprocal(weight, out=weight)
        weight[~good] = 0.0                                   # 1 / (sigma^2 + s^2), 0 if bad
        self.theta = theta
        self.weight = weight
        self.flux = np.where(good, flux, 0.0)
        self.n_good = good.sum(axis=1)
        k = theta.shape[1]
        iu, ju = np.triu_indices(k)
        flat = weight @ (theta[:, iu] * theta[:, ju])         # (n, k(k+1)/2): one GEMM
        self.G = np.empty((flux.shape[0], k, k))
        self.G[:, iu, ju] = flat
        self.G[:, ju, iu] = flat
        self.factors = None if factors is None or factors.shape[1] == 0 else factors
        if self.factors is not None:      # weight is 0 at masked pixels: U needs no masking
            U, r = self.factors, self.factors.shape[1]
            # A_n = U^T W_n Theta and M_n = I + U^T W_n U for all stars: one GEMM each
            A = weight @ (U[:, :, None] * theta[:, None, :]).reshape(len(U), r * k)
            self.A = A.reshape(-1, r, k)
            self.M = factor_system(weight, U)
            self.G -= np.einsum("nrk,nrl->nkl", self.A, np.linalg.solve(self.M, self.A))

    def around(self, centre: np.ndarray | None = None) -> SufficientStatistics:
        """G, h, c expanded around design vectors ``centre`` (n_stars, k) (default 0)."""
        n, k = self.flux.shape[0], self.theta.shape[1]
        if centre is None:
            centre = np.zeros((n, k))
            wr = self.weight * self.flux
            c = np.einsum("np,np->n", wr, self.flux)
        else:
            residual = centre @ self.theta.T
            np.subtract(self.flux, residual, out=residual)
            residual *= self.weight != 0                       # masked pixels: residual 0
            wr = self.weight * residual
            c = np.einsum("np,np->n", wr, residual)
        h = wr @ self.theta
        if self.factors is not None:
            y = wr @ self.factors                                  # U^T W r, (n, r)
            z = np.linalg.solve(self.M, y[:, :, None])[:, :, 0]
            h -= np.einsum("nrk,nr->nk", self.A, z)
            c = c - np.einsum("nr,nr->n", y, z)
        return SufficientStatistics(self.G, h, c, self.n_good, centre)


def sufficient_statistics(theta: np.ndarray, s2: np.ndarray, pixel_mask: np.ndarray,
                          flux: np.ndarray, ivar: np.ndarray, *, centre: np.ndarray | None = None,
                          factors: np.ndarray | None = None) -> SufficientStatistics:
    """G, h, c for every star, expanded around ``centre`` (see :class:`StarSystems`).

    Parameters
    ----------
    theta : ndarray, shape (n_pixels, k)
        The model's coefficients (k the length of the design vector).
    s2 : ndarray, shape (n_pixels,)
        Squared intrinsic scatter per pixel, added to each star's noise variance.
    pixel_mask : ndarray of bool, shape (n_pixels,)
        Pixels the fit uses; pixels with non-positive or non-finite ``ivar`` or non-finite
        ``flux`` are left out too (weight 0).
    flux, ivar : ndarray, shape (n_stars, n_pixels)
        Normalized flux and its inverse variance.
    centre : ndarray, shape (n_stars, k), default=None
        Design vectors v0 the quadratic form is expanded around; None: zeros.
    factors : ndarray, shape (n_pixels, r), default=None
        Error factors U of a low-rank pixel covariance (C = W^-1 + U U^T, applied by the
        Woodbury identity); None or r = 0: diagonal noise only.

    Returns
    -------
    SufficientStatistics
        G (n_stars, k, k), h (n_stars, k), c (n_stars,), the good-pixel counts and ``centre``.
    """
    return StarSystems(theta, s2, pixel_mask, flux, ivar, factors).around(centre)


def chi2_of(stats: SufficientStatistics, design: np.ndarray, stars: np.ndarray) -> np.ndarray:
    """chi^2 of ``stars`` (indices) at design vectors ``design`` (m, k)."""
    G, h, c = stats.G[stars], stats.h[stars], stats.c[stars]
    dv = design - stats.centre[stars]
    return c - 2 * np.einsum("mk,mk->m", h, dv) + np.einsum("mk,mkl,ml->m", dv, G, dv)
