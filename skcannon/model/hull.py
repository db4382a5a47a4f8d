""""Inside the training set", judged in the joint label space: the convex hull of the training
labels.

A per-label box (each label within its training minimum and maximum) misses combinations the
training set never held (a hot giant, a metal-poor dwarf when the training set has only
metal-rich ones): every label is in range, the combination is not. The hull is taken in the
model's scaled label space (each label centred and divided by its spread, see
:class:`skcannon.model.scaling.LabelScaling`; hull membership does not depend on the scaling,
its numerics do) and stored as its vertices (physical units) with the model, so that files keep
it; a model without one (older files) falls back to the per-label box.

Why a convex hull rather than a nearest-neighbour distance: it needs no tuned distance, its
vertices are a small part of the training labels (a file does not carry the training set), and
it answers exactly the question a user asks of ``predict`` ("is this between training stars?");
holes inside a curved training set (the giant branch's concave side) it does not flag -- the
excess-scatter flag (UNLIKE_TRAINING) covers spectra the model does not describe.
"""

from __future__ import annotations

import numpy as np

#: Tolerance of hull membership (distance outside a facet, scaled units): training labels
#: themselves are inside.
HULL_TOLERANCE = 1e-9


def hull_vertices(labels: np.ndarray, scales: np.ndarray | None = None) -> np.ndarray | None:
    """The training labels on the convex hull of all of them.

    Parameters
    ----------
    labels : ndarray, shape (n_stars, n_labels)
        Training labels (physical units).
    scales : ndarray, shape (n_labels,), default=None
        Label spreads used to condition the hull (default: the labels' standard deviations).

    Returns
    -------
    ndarray, shape (n_vertices, n_labels), or None
        The vertices (physical units); None where no full-dimensional hull exists (fewer
        than n_labels + 1 distinct stars, or labels on a lower-dimensional set): then the
        per-label box is used.
    """
    from scipy.spatial import ConvexHull, QhullError

    labels = np.asarray(labels, float)
    if labels.ndim != 2 or labels.shape[0] <= labels.shape[1]:
        return None
    if labels.shape[1] == 1:
        return np.vstack([labels.min(axis=0), labels.max(axis=0)])
    scales = labels.std(axis=0) if scales is None else np.asarray(scales, float)
    if not np.all(scales > 0):
        return None
    centre = labels.mean(axis=0)
    try:
        hull = ConvexHull((labels - centre) / scales)
    except (QhullError, ValueError):
        return None
    return labels[np.sort(hull.vertices)]


def inside_hull(vertices: np.ndarray | None, points: np.ndarray,
                lower: np.ndarray | None = None, upper: np.ndarray | None = None) -> np.ndarray:
    """Which label vectors lie inside the training set.

    Parameters
    ----------
    vertices : ndarray, shape (n_vertices, n_labels), or None
        From :func:`hull_vertices`; None: judge by the per-label box ``lower``/``upper``.
    points : ndarray, shape (n, n_labels)
        Label vectors (physical units); rows with a non-finite value count as inside (there
        is nothing to judge).
    lower, upper : ndarray, shape (n_labels,), default=None
        The training minimum and maximum of each label (the box; required without a hull).

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    from scipy.spatial import ConvexHull

    points = np.atleast_2d(np.asarray(points, float))
    finite = np.all(np.isfinite(points), axis=1)
    inside = np.ones(len(points), dtype=bool)
    if lower is not None and upper is not None:
        inside &= ~np.any((points < lower) | (points > upper), axis=1)
    if vertices is None or not finite.any():
        return inside | ~finite
    vertices = np.asarray(vertices, float)
    if vertices.shape[1] == 1:
        box = (points >= vertices.min(axis=0)) & (points <= vertices.max(axis=0))
        return (inside & box[:, 0]) | ~finite
    centre, scales = vertices.mean(axis=0), vertices.std(axis=0)
    equations = ConvexHull((vertices - centre) / scales).equations    # outward normals, offset
    scaled = (np.where(finite[:, None], points, centre) - centre) / scales
    distance = scaled @ equations[:, :-1].T + equations[:, -1]
    return (inside & np.all(distance <= HULL_TOLERANCE, axis=1)) | ~finite
