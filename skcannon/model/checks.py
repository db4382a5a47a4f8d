"""Training inputs checked by what they mean, before any training: spectra that cannot be
normalized flux (non-finite where used, negative inverse variances, whole numbers only, the
same for every star), duplicate spectra (one star counted twice), and labels whose spread is
carried by too few stars or too few distinct values for their terms. Each is a named error."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from skcannon.errors import LabelError, TrainingSetError
from skcannon.spectra import FLUX, IVAR

#: A label's spread must be carried by at least this many stars: with any
#: ``MIN_SPREAD_STARS - 1`` stars left out, the rest must still span more than
#: :data:`MIN_SPREAD_FRACTION` of the label's range (else a few stars, or one wild value,
#: decide every coefficient of that label).
MIN_SPREAD_STARS = 3
#: See :data:`MIN_SPREAD_STARS`.
MIN_SPREAD_FRACTION = 1e-3
#: Stars named at most in a message.
SHOWN = 5
#: How ``Cannon.dropped_`` starts the reason of a spectrum dropped as a repeat of an earlier one.
REPEATED_SPECTRUM = "same spectrum as"


def _first(mask: np.ndarray, ids: Sequence[str]) -> str:
    """'<id>, pixel <p>' of the first True of a (n_stars, n_pixels) mask."""
    star, pixel = np.argwhere(mask)[0]
    return f"{ids[star]}, pixel {pixel}"


def check_training_spectra(X: np.ndarray, ids: Sequence[str]) -> None:
    """Refuse training spectra that cannot be normalized flux.

    Parameters
    ----------
    X : ndarray, shape (n_stars, 3, n_pixels)
        Checked spectra (see :func:`skcannon.spectra.check_spectra`).
    ids : sequence of str of length n_stars
        Star names for the messages.

    Raises
    ------
    TrainingSetError
        Negative or non-finite inverse variances; non-finite flux where the inverse variance
        is > 0; every used flux value a whole number (integer or truncated flux); the same
        flux in every star on every pixel (identical spectra).
    """
    flux, ivar = X[:, FLUX], X[:, IVAR]
    bad = ~np.isfinite(ivar) | (ivar < 0)
    if bad.any():
        raise TrainingSetError(
            f"spectra: {int(bad.sum())} inverse variance(s) are negative or non-finite (first: "
            f"{_first(bad, ids)}); they must be >= 0 (0 marks a bad pixel)")
    good = ivar > 0
    bad = good & ~np.isfinite(flux)
    if bad.any():
        raise TrainingSetError(
            f"spectra: {int(bad.sum())} pixel(s) have non-finite flux and inverse variance > 0 "
            f"(first: {_first(bad, ids)}); mask them (inverse variance 0)")
    if good.any() and np.all((flux == np.round(flux)) | ~good):
        raise TrainingSetError(
            "spectra: every usable flux value is a whole number (e.g. 0 and 1): normalized "
            "flux is a fraction of the continuum; was it stored as or truncated to integers?")
    low = np.where(good, flux, np.inf).min(axis=0)
    high = np.where(good, flux, -np.inf).max(axis=0)
    if len(X) > 1 and good.any() and not np.any((high > low) & np.isfinite(high - low)):
        raise TrainingSetError(
            f"spectra: all {len(X)} training spectra are identical (every pixel has the same "
            "flux in every star): nothing ties the spectra to the labels")


def duplicate_spectra(X: np.ndarray) -> np.ndarray:
    """For each star, the earlier row whose spectrum is the same (flux on the same usable
    pixels), or -1 (also for a star without usable pixels: training excludes those).

    Parameters
    ----------
    X : ndarray, shape (n_stars, 3, n_pixels)

    Returns
    -------
    ndarray of int, shape (n_stars,)
    """
    good = X[:, IVAR] > 0
    rows = np.ascontiguousarray(np.where(good, X[:, FLUX], np.nan))   # masked: NaN
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    earlier = first[inverse.ravel()]
    return np.where((earlier == np.arange(len(X))) | ~good.any(axis=1), -1, earlier)


def duplicates_message(earlier: np.ndarray, ids: Sequence[str]) -> str:
    """The error naming the duplicate spectra of :func:`duplicate_spectra` (at most
    :data:`SHOWN`).

    Parameters
    ----------
    earlier : ndarray of int, shape (n_stars,)
    ids : sequence of str of length n_stars

    Returns
    -------
    str
    """
    rows = np.flatnonzero(earlier >= 0)
    listed = "; ".join(f"{ids[n]} repeats {ids[earlier[n]]}" for n in rows[:SHOWN])
    more = f"; ... and {len(rows) - SHOWN} more" if len(rows) > SHOWN else ""
    return (f"spectra: {len(rows)} of {len(earlier)} training spectra repeat an earlier one "
            f"({listed}{more}), so {len(earlier) - len(rows)} distinct stars would count as "
            f"{len(earlier)}; remove them, or drop them with duplicates='drop' "
            "(skcannon train --drop-duplicates)")


def check_label_spread(values: np.ndarray, names: Sequence[str], ids: Sequence[str],
                       powers: np.ndarray) -> None:
    """Refuse labels whose terms the training set cannot determine.

    Parameters
    ----------
    values : ndarray, shape (n_stars, n_labels)
        Usable training labels.
    names : sequence of str of length n_labels
    ids : sequence of str of length n_stars
    powers : ndarray of int, shape (n_labels,)
        The highest power of each label in the model's terms.

    Raises
    ------
    LabelError
        A label with fewer distinct values than its highest power + 1 (its terms are then
        combinations of each other), or whose spread is carried by fewer than
        :data:`MIN_SPREAD_STARS` stars (see there).
    """
    for i, name in enumerate(names):
        distinct = np.unique(values[:, i])
        if distinct.size <= powers[i]:
            raise LabelError(
                f"labels: {name} takes only {distinct.size} distinct values "
                f"({', '.join(f'{v:g}' for v in distinct)}); its terms up to power "
                f"{powers[i]} need at least {powers[i] + 1}")
    order = np.argsort(values, axis=0, kind="stable")
    ordered = np.take_along_axis(values, order, axis=0)
    full, n = ordered[-1] - ordered[0], len(values)
    for m in range(1, min(MIN_SPREAD_STARS, n - 1)):       # m stars left out: j low, m-j high
        trimmed = ordered[n - 1 - m:] - ordered[:m + 1]
        for i in np.flatnonzero(trimmed.min(axis=0) <= MIN_SPREAD_FRACTION * full):
            j = int(np.argmin(trimmed[:, i]))
            few = np.r_[order[:j, i], order[n - m + j:, i]]
            listed = ", ".join(f"{ids[k]} = {values[k, i]:g}" for k in few)
            raise LabelError(
                f"labels: the spread of {names[i]} is carried by {few.size} star(s) "
                f"({listed}): without them it spans {trimmed[j, i]:g} of {full[i]:g}; so few "
                f"stars cannot determine its terms (at least {MIN_SPREAD_STARS} are needed); "
                f"fix or drop those stars, or leave {names[i]} out of label_names")
