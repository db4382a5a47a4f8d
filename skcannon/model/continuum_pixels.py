"""Continuum pixels found from the data: the iteration of Ness et al. (2015), sections 2.3 and 5.3.

Continuum pixels are those whose flux does not depend on the labels: in a trained Cannon, the
baseline coefficient theta_0 (the flux at the mean labels) is ~1, the linear coefficients (the
flux change per standard deviation of each label) are ~0, and the intrinsic scatter s is small.
They are found by iterating, from a seed set:

1. normalize the raw spectra with the current continuum pixels (any
   :class:`~skcannon.preprocessing.ContinuumNormalizer`-like transformer, cloned with
   ``continuum_pixels`` set: survey-free; APOGEE's per-chip one is
   :func:`skcannon.apogee.apogee_normalizer`);
2. train a Cannon on the normalized spectra;
3. select: among the trained pixels with abs(theta_0 - 1) <= ``flux_tol``, the ``n_pixels`` with
   the smallest score abs(theta_0 - 1) + max_i abs(theta_i) + s (linear coefficients in scaled label
   units; s the intrinsic scatter) - in every region in proportion to its size, so that each
   region can be normalized;
4. repeat until fewer than ``tol`` x ``n_pixels`` pixels enter or leave the set (or
   ``max_iter``): many pixels are nearly as clean, and the ranking among them follows the
   noise, so an exactly unchanged set is not a useful requirement.

The result records the criteria and each iteration's change (:class:`ContinuumPixels`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from skcannon.errors import TrainingSetError

#: Default largest abs(theta_0 - 1) of a continuum pixel (normalized flux).
CONTINUUM_FLUX_TOL = 0.02
#: Default stability: converged when fewer than this fraction of ``n_pixels`` enter or leave.
CONTINUUM_STABLE_FRACTION = 0.1
#: Default number of continuum pixels (the lab's list has 529 on the 7214-pixel grid).
CONTINUUM_N_PIXELS = 529


@dataclass
class ContinuumPixels:
    """Continuum pixels found by :func:`find_continuum_pixels`.

    Attributes
    ----------
    mask : ndarray of bool, shape (n_pixels,)
        The continuum pixels.
    converged : bool
        The last iteration changed fewer than ``tol`` x ``n_pixels`` pixels.
    changes : list of int
        Pixels that entered or left the set at each iteration (the first: against the seed).
    criteria : dict
        The selection: ``flux_tol``, ``n_pixels``, ``score`` (in words), ``label_names``,
        ``max_iter`` and the final set's largest abs(theta_0 - 1), largest linear coefficient
        and largest s.
    score : ndarray, shape (n_pixels,)
        The last model's score per pixel (inf where not a candidate).
    """

    mask: np.ndarray
    converged: bool
    changes: list = field(default_factory=list)
    criteria: dict = field(default_factory=dict)
    score: np.ndarray | None = None


def continuum_score(model, flux_tol: float) -> np.ndarray:
    """Per pixel, abs(theta_0 - 1) + max_i abs(theta_i) + s for the candidates (trained,
    abs(theta_0 - 1) <= ``flux_tol``), inf elsewhere.

    Parameters
    ----------
    model : Cannon
        A fitted Cannon.
    flux_tol : float

    Returns
    -------
    ndarray, shape (n_pixels,)
    """
    vectorizer = model.vectorizer_
    linear = [vectorizer.terms.index((i,)) for i in range(vectorizer.n_labels)]
    theta = model.theta_
    score = (np.abs(theta[:, 0] - 1) + np.abs(theta[:, linear]).max(axis=1)
             + np.sqrt(model.s2_))
    candidate = model.pixel_mask_ & (np.abs(theta[:, 0] - 1) <= flux_tol) & np.isfinite(score)
    return np.where(candidate, score, np.inf)


def select_pixels(score: np.ndarray, region_index: np.ndarray, n_pixels: int) -> np.ndarray:
    """The ``n_pixels`` lowest finite scores, shared among regions in proportion to their
    number of pixels (each region at least one pixel where it has candidates).

    Parameters
    ----------
    score : ndarray, shape (n_pixels,)
    region_index : ndarray of int, shape (n_pixels,)
        Region of each pixel (-1: outside every region; never selected).
    n_pixels : int

    Returns
    -------
    ndarray of bool, shape (n_pixels,)
    """
    mask = np.zeros(score.shape, dtype=bool)
    regions = np.unique(region_index[region_index >= 0])
    sizes = np.array([np.sum(region_index == k) for k in regions])
    quota = np.maximum(np.round(n_pixels * sizes / sizes.sum()).astype(int), 1)
    for k, count in zip(regions, quota, strict=True):       # a few regions, not pixels
        inside = np.flatnonzero((region_index == k) & np.isfinite(score))
        best = inside[np.argsort(score[inside], kind="stable")[:count]]
        mask[best] = True
    return mask


def _final_criteria(model, mask: np.ndarray) -> dict:
    """What the final set satisfies in the last model: its size, the score in words, the
    largest abs(theta_0 - 1), linear coefficient and s among its pixels."""
    names = list(model.label_names)
    linear = [model.vectorizer_.terms.index((i,)) for i in range(len(names))]
    return {"n_pixels": int(mask.sum()), "label_names": names,
            "score": "abs(theta_0 - 1) + max_i abs(theta_i) (scaled labels) + s",
            "max_abs_theta0_minus_1": float(np.abs(model.theta_[mask, 0] - 1).max()),
            "max_abs_linear": float(np.abs(model.theta_[mask][:, linear]).max()),
            "max_s": float(np.sqrt(model.s2_[mask]).max())}


def find_continuum_pixels(spectra, labels, normalizer, *, label_names, seed=None,
                          n_pixels: int = CONTINUUM_N_PIXELS,
                          flux_tol: float = CONTINUUM_FLUX_TOL, max_iter: int = 20,
                          tol: float = CONTINUUM_STABLE_FRACTION,
                          order: int = 2) -> ContinuumPixels:
    """Find continuum pixels by the iteration of Ness et al. (2015) (see the module text).

    Parameters
    ----------
    spectra : ndarray, shape (n_stars, 3, n_pixels)
        Spectra before continuum normalization (flux, inverse variance, bitmask).
    labels : array_like, shape (n_stars, n_labels), or DataFrame
        Their labels.
    normalizer : ContinuumNormalizer
        Unfitted; cloned with ``continuum_pixels`` set to each iteration's mask (its regions
        share the pixels out).
    label_names : sequence of str
    seed : array_like of bool, shape (n_pixels,), or None, default=None
        The first continuum pixels (None: every pixel - a sigma-clipped fit through all the
        flux, a rough first continuum).
    n_pixels : int, default=CONTINUUM_N_PIXELS
    flux_tol : float, default=CONTINUUM_FLUX_TOL
        Candidates have abs(theta_0 - 1) <= ``flux_tol``.
    max_iter : int, default=20
    tol : float, default=CONTINUUM_STABLE_FRACTION
        Stable (converged) when fewer than ``tol`` x ``n_pixels`` pixels enter or leave.
    order : int, default=2
        Polynomial order of the Cannon trained at each iteration (no error factors).

    Returns
    -------
    ContinuumPixels

    Raises
    ------
    TrainingSetError
        No pixel passes the criteria.
    """
    from sklearn.base import clone

    from skcannon.model.cannon import Cannon
    X = np.asarray(spectra, dtype=float)
    mask = np.ones(X.shape[2], bool) if seed is None else np.asarray(seed, dtype=bool)
    model, changes, converged = Cannon(label_names, order=order, n_error_factors=0), [], False
    for _ in range(max_iter):
        normalizer_k = clone(normalizer).set_params(continuum_pixels=mask).fit(X)
        model.fit(labels, normalizer_k.normalize(X)[0])
        score = continuum_score(model, flux_tol)
        if not np.isfinite(score).any():
            raise TrainingSetError(f"continuum pixels: no trained pixel has abs(theta_0 - 1) <= "
                                   f"{flux_tol:g}; are the spectra on a continuum scale?")
        new = select_pixels(score, normalizer_k.region_index_, n_pixels)
        changes.append(int(np.sum(new != mask)))
        converged = changes[-1] < tol * n_pixels
        mask = new
        if converged:
            break
    criteria = {"flux_tol": flux_tol, "max_iter": max_iter, "tol": tol}
    return ContinuumPixels(mask=mask, converged=converged, changes=changes,
                           criteria={**criteria, **_final_criteria(model, mask)}, score=score)
