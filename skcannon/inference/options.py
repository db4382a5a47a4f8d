"""The options of the fits beyond the labels (:mod:`skcannon.inference.nuisance`,
:mod:`skcannon.inference.visits`) as ``Cannon.infer_labels`` takes them, checked once."""

from __future__ import annotations

from numbers import Integral

import numpy as np

#: Default radial velocity bounds, km/s (APOGEE stars: |v| < 400 km/s but for a few halo stars).
DEFAULT_RV_BOUNDS = (-400.0, 400.0)


def check_nuisance_options(label_names, n_stars: int, *, fixed, fit_rv, rv_bounds,
                           continuum_order, method: str = "lm") -> dict:
    """Check the options of :func:`fit_labels_nuisance` as ``Cannon.infer_labels`` takes
    them (``fixed`` a dict of label -> value or (n_stars,) values).

    Parameters
    ----------
    label_names : sequence of str
    n_stars : int
    fixed, fit_rv, rv_bounds, continuum_order, method
        As ``Cannon.infer_labels`` takes them (these options need ``method="lm"``).

    Returns
    -------
    dict
        Keyword arguments of :func:`fit_labels_nuisance` (``fixed`` as an (n_stars, L) array).

    Raises
    ------
    ValueError
        Naming the option: an unknown label, values of the wrong length or non-finite where
        not NaN, reversed or non-finite velocity bounds, a negative continuum order, another
        method than "lm".
    """
    if method != "lm":
        raise ValueError(f"fixed, fit_rv and continuum_order need method 'lm'; got {method!r}")
    values = None if fixed is None else _fixed_values(label_names, n_stars, fixed)
    low, high = (float(v) for v in rv_bounds)
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"rv_bounds must be finite (low, high) km/s with low < high; got "
                         f"{rv_bounds!r}")
    if continuum_order is not None and (isinstance(continuum_order, bool) or not isinstance(
            continuum_order, Integral) or continuum_order < 0):
        raise ValueError(f"continuum_order must be None or an integer >= 0; got "
                         f"{continuum_order!r}")
    return {"fixed": values, "fit_rv": bool(fit_rv), "rv_bounds": (low, high),
            "continuum_order": continuum_order}


def _fixed_values(label_names, n_stars: int, fixed) -> np.ndarray:
    """``fixed`` (dict of label -> value or (n_stars,) values) as an (n_stars, L) array, NaN
    where a label is fitted (ValueError naming the problem)."""
    names = list(label_names)
    if not isinstance(fixed, dict):
        raise ValueError(f"fixed must be a dict of label -> values; got {type(fixed)}")
    values = np.full((n_stars, len(names)), np.nan)
    for name, given in fixed.items():
        if name not in names:
            raise ValueError(f"fixed: {name!r} is not one of the model's labels {names}")
        given = np.asarray(given, float)
        if given.ndim == 0:
            given = np.full(n_stars, float(given))
        if given.shape != (n_stars,) or np.any(np.isinf(given)):
            raise ValueError(f"fixed: {name} needs one finite value (or NaN: fit it) per "
                             f"spectrum ({n_stars}); got shape {given.shape}")
        values[:, names.index(name)] = given
    return values
