"""Label names, units, axis names and output column names, defined once.

Labels are named as in the APOGEE allStar catalog (``TEFF``, ``LOGG``, ``FE_H`` ...): the model
core uses these names only as strings, so any other naming works too (units and pretty names
then fall back to the name itself).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: Labels the Cannon learns by default, in order.
DEFAULT_LABELS = ("TEFF", "LOGG", "FE_H", "MG_FE", "SI_FE")
#: Labels recognised in tables when none are named: the mission's five, then [alpha/M], [M/H]
#: (ASPCAP's calibrated M_H or its spectroscopic PARAM_M_H).
KNOWN_LABELS = ("TEFF", "LOGG", "FE_H", "MG_FE", "SI_FE", "ALPHA_M", "M_H", "PARAM_M_H")
#: Physical units of the labels, for axis labels and tables.
LABEL_UNITS = {"TEFF": "K", "LOGG": "dex", "FE_H": "dex", "MG_FE": "dex", "SI_FE": "dex",
               "M_H": "dex", "PARAM_M_H": "dex", "ALPHA_M": "dex"}
#: Pretty names of the labels, for plots (no LaTeX needed: matplotlib mathtext).
LABEL_TEX = {"TEFF": r"$T_\mathrm{eff}$", "LOGG": r"$\log g$", "FE_H": "[Fe/H]",
             "MG_FE": "[Mg/Fe]", "SI_FE": "[Si/Fe]", "M_H": "[M/H]", "PARAM_M_H": "[M/H]",
             "ALPHA_M": r"[$\alpha$/M]"}


#: Plain-text names and decimals of the known labels, for titles and captions ("Teff 4832 K").
LABEL_PLAIN = {"TEFF": ("Teff", 0), "LOGG": ("log g", 2), "FE_H": ("[Fe/H]", 2),
               "MG_FE": ("[Mg/Fe]", 2), "SI_FE": ("[Si/Fe]", 2), "M_H": ("[M/H]", 2),
               "PARAM_M_H": ("[M/H]", 2), "ALPHA_M": ("[alpha/M]", 2)}


def format_labels(names: Iterable[str], values) -> str:
    """Rounded labels in words, e.g. "Teff 4832 K, log g 2.45, [Fe/H] -0.21" (other labels:
    their name and 3 significant digits).

    Parameters
    ----------
    names : iterable of str
        Label names.
    values : array_like of shape (n_labels,)
        One value per name.

    Returns
    -------
    str
    """
    parts = []
    for name, value in zip(names, values, strict=True):
        plain, decimals = LABEL_PLAIN.get(name, (name, None))
        unit = " K" if LABEL_UNITS.get(name) == "K" else ""
        number = f"{value:.3g}" if decimals is None else f"{value:.{decimals}f}"
        parts.append(f"{plain} {number}{unit}")
    return ", ".join(parts)


def label_axis_name(name: str) -> str:
    """Axis label with units, e.g. ``'$T_\\mathrm{eff}$ (K)'`` (matplotlib mathtext).

    Parameters
    ----------
    name : str
        A label name.

    Returns
    -------
    str
    """
    unit = LABEL_UNITS.get(name, "")
    return f"{LABEL_TEX.get(name, name)}" + (f" ({unit})" if unit else "")


def present_labels(columns: Iterable[str]) -> list[str]:
    """The :data:`KNOWN_LABELS` present in ``columns``, in that order.

    Parameters
    ----------
    columns : iterable of str
        Column names of a table.

    Returns
    -------
    list of str
    """
    columns = set(columns)
    return [name for name in KNOWN_LABELS if name in columns]


# -- output column names ---------------------------------------------------------------------
def error_column(name: str) -> str:
    """Column of a label's 1-sigma uncertainty (allStar style): ``TEFF_ERR``.

    Parameters
    ----------
    name : str
        A label name.

    Returns
    -------
    str
    """
    return f"{name}_ERR"


def formal_error_column(name: str) -> str:
    """Column of a label's noise-only (formal) uncertainty: ``TEFF_ERR_FORMAL``.

    Parameters
    ----------
    name : str
        A label name.

    Returns
    -------
    str
    """
    return f"{error_column(name)}_FORMAL"


def covariance_column(first: str, second: str) -> str:
    """Column of the covariance of two labels: ``COV_TEFF_LOGG``.

    Parameters
    ----------
    first, second : str
        Label names.

    Returns
    -------
    str
    """
    return f"COV_{first}_{second}"


def reference_column(name: str) -> str:
    """Column of a label's reference (e.g. ASPCAP) value beside a fitted one: ``TEFF_REF``.

    Parameters
    ----------
    name : str
        A label name.

    Returns
    -------
    str
    """
    return f"{name}_REF"


def fitted_column(name: str) -> str:
    """Column of a label's fitted value beside its reference: ``TEFF_FIT``.

    Parameters
    ----------
    name : str
        A label name.

    Returns
    -------
    str
    """
    return f"{name}_FIT"


def offset_column(name: str) -> str:
    """Column of (fitted - reference) in robust scatters: ``TEFF_OFF_SIGMA``.

    Parameters
    ----------
    name : str
        A label name.

    Returns
    -------
    str
    """
    return f"{name}_OFF_SIGMA"


# -- plausibility ----------------------------------------------------------------------------
#: Plausible ranges (inclusive) of the known labels, in their units: values outside are taken
#: for errors (typos, unit mistakes, nulls), not stars. Wide on purpose: from M dwarfs to hot
#: stars, from the most metal-poor known stars to the most metal-rich.
PLAUSIBLE_RANGES: dict[str, tuple[float, float]] = {
    "TEFF": (2000.0, 50000.0), "LOGG": (-1.0, 6.0),
    "FE_H": (-6.0, 2.0), "M_H": (-6.0, 2.0), "PARAM_M_H": (-6.0, 2.0),
    "MG_FE": (-2.0, 2.0), "SI_FE": (-2.0, 2.0), "ALPHA_M": (-2.0, 2.0),
}
#: Largest magnitude any label may have, known or not, in any unit: beyond it the squares and
#: products of a model's terms overflow double precision (1e300 is a typo or a null).
MAX_ABS_LABEL = 1e100
#: Values at or below this are catalog nulls in any label: ASPCAP's -9999 in the FITS files and
#: SkyServer's NOT NULL sentinels (-9999 and -9999.99 are both in use), whatever their rounding.
#: No label skcannon reads is physically below it (TEFF, LOGG, abundances are far above).
NULL_THRESHOLD = -9000.0
#: The forms a missing catalog value takes, as counted by :func:`null_forms`.
NULL_FORMS = ("non-finite", "sentinel", "empty")


def null_forms(values) -> dict[str, np.ndarray]:
    """Where each form of a missing catalog value occurs: the one definition of "missing".

    Parameters
    ----------
    values : array_like of shape (n,)
        A catalog column: numbers (FITS NaN, ASPCAP's -9999, SkyServer's -9999.99 ...) or
        text as read from CSV (numbers as text, empty or blank strings, None).

    Returns
    -------
    dict of str to ndarray of bool of shape (n,)
        Keys :data:`NULL_FORMS`: ``"non-finite"`` (NaN, +-inf, None), ``"sentinel"`` (at or
        below :data:`NULL_THRESHOLD`) and ``"empty"`` (empty or blank strings, and text that
        is not a number). Each entry is in exactly one form or none.
    """
    import numpy as np
    import pandas as pd

    array = np.atleast_1d(np.asarray(values))
    if array.dtype.kind in "biuf":                      # numbers: no text to look at
        numbers = array.astype(float)
        empty = np.zeros(numbers.shape, dtype=bool)
    else:                                               # text or mixed (CSV, SkyServer)
        series = pd.Series(array.astype(object))
        numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
        empty = np.isnan(numbers) & series.notna().to_numpy()   # text that is no number
    with np.errstate(invalid="ignore"):
        sentinel = np.isfinite(numbers) & (numbers <= NULL_THRESHOLD)
    return {"non-finite": ~np.isfinite(numbers) & ~empty, "sentinel": sentinel, "empty": empty}


def missing_label(values) -> np.ndarray:
    """True where a catalog value is missing, in any of its forms (see :func:`null_forms`).

    Parameters
    ----------
    values : array_like of shape (n,)
        A catalog column (numbers, or text as read from CSV).

    Returns
    -------
    ndarray of bool of shape (n,)
        True where the value is non-finite, at or below :data:`NULL_THRESHOLD`, or an empty
        string (or text that is not a number).
    """
    forms = null_forms(values)
    return forms["non-finite"] | forms["sentinel"] | forms["empty"]


def label_problems(values, names: Iterable[str]) -> list[str]:
    """What is wrong with each row of labels, in words ('' where nothing).

    Parameters
    ----------
    values : array_like, shape (n_stars, n_labels)
        Labels; non-numbers should already be NaN.
    names : iterable of str
        The label of each column: known labels are also checked against
        :data:`PLAUSIBLE_RANGES`; others against +-:data:`MAX_ABS_LABEL`.

    Returns
    -------
    list of str of length n_stars
        One per star, e.g. ``"TEFF null (-9999); LOGG missing (NaN)"`` (the checks run on the
        whole array at once; only rows with a problem are put in words).
    """
    import numpy as np

    values = np.atleast_2d(np.asarray(values, dtype=float))
    names = list(names)
    low, high = (np.array([PLAUSIBLE_RANGES.get(n, (-MAX_ABS_LABEL, MAX_ABS_LABEL))[k]
                           for n in names]) for k in (0, 1))
    with np.errstate(invalid="ignore"):
        null = values <= NULL_THRESHOLD
        outside = np.isfinite(values) & ~null & ((values < low) | (values > high))
    bad = ~np.isfinite(values) | null | outside
    out = [""] * len(values)
    for n in np.flatnonzero(bad.any(axis=1)):
        problems = []
        for i in np.flatnonzero(bad[n]):
            name, value = names[i], values[n, i]
            if np.isnan(value):
                problems.append(f"{name} missing (NaN)")
            elif not np.isfinite(value):
                problems.append(f"{name} infinite")
            elif null[n, i]:
                problems.append(f"{name} null ({value:g})")
            else:
                problems.append(f"{name} = {value:g} outside the plausible {low[i]:g}.."
                                f"{high[i]:g}")
        out[n] = "; ".join(problems)
    return out


def unusable_labels_message(problems: list[str], ids: list[str] | None = None, *,
                            hint: str = "", shown: int = 10) -> str | None:
    """The error message naming the stars (``ids``, default row numbers) whose
    :func:`label_problems` are not empty, at most ``shown`` of them.

    Parameters
    ----------
    problems : list of str of length n_stars
        From :func:`label_problems`.
    ids : list of str of length n_stars, default=None
        Star names; None: ``row <n>``.
    hint : str, default=""
        Ends the message (what the user can do).
    shown : int, default=10
        Stars named at most (the rest are counted).

    Returns
    -------
    str or None
        The message; None when no star has a problem.
    """
    rows = [n for n, problem in enumerate(problems) if problem]
    if not rows:
        return None
    ids = ids if ids is not None else [f"row {n}" for n in range(len(problems))]
    listed = "; ".join(f"{ids[n]}: {problems[n]}" for n in rows[:shown])
    more = f"; ... and {len(rows) - shown} more" if len(rows) > shown else ""
    return (f"labels: {len(rows)} of {len(problems)} training stars have unusable labels "
            f"({listed}{more})" + (f"; {hint}" if hint else ""))


def require_usable_labels(values, names: Iterable[str], ids: list[str] | None = None, *,
                          hint: str = "") -> None:
    """Raise :class:`~skcannon.errors.LabelError` naming the stars whose labels have a problem
    (see :func:`label_problems` and :func:`unusable_labels_message`).

    Parameters
    ----------
    values : array_like of shape (n_stars, n_labels)
        Labels; non-numbers should already be NaN.
    names : iterable of str
        The label of each column.
    ids : list of str of length n_stars, default=None
        Star names; None: ``row <n>``.
    hint : str, default=""
        Ends the message (what the user can do).

    Raises
    ------
    LabelError
        When any star's labels have a problem.
    """
    from skcannon.errors import LabelError

    message = unusable_labels_message(label_problems(values, names), ids, hint=hint)
    if message:
        raise LabelError(message)
