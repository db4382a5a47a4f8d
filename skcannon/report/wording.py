"""Sentences that compare numbers, computed from the numbers (never fixed text).

:func:`compare` turns two numbers into "equal within 8 %", "3.2 times smaller than", ...; the
report's sentences call it with the numbers of the table beside them, so the words change when
the numbers do.
"""

from __future__ import annotations

import math

#: Two numbers within this relative difference are called equal (20 %).
EQUAL_TOLERANCE = 0.2


def ratio_words(ratio: float, *, tolerance: float = EQUAL_TOLERANCE) -> str:
    """How a number relates to another, in words, from their ratio ``a / b``.

    Parameters
    ----------
    ratio : float
        ``a / b`` (both positive).
    tolerance : float, default=EQUAL_TOLERANCE
        Relative difference below which the two count as equal.

    Returns
    -------
    str
        ``"equal within x % to"``, ``"x times larger than"``, ``"x times smaller than"``,
        ``"x % larger than"`` / ``"x % smaller than"`` (between ``tolerance`` and a factor 2),
        or ``"not comparable with"`` for a non-finite or non-positive ratio.
    """
    if not math.isfinite(ratio) or ratio <= 0:
        return "not comparable with"
    if abs(ratio - 1.0) <= tolerance:
        return f"equal (within {abs(ratio - 1.0) * 100:.0f} %) to"
    if ratio >= 2.0:
        return f"{ratio:.3g} times larger than"
    if ratio <= 0.5:
        return f"{1.0 / ratio:.3g} times smaller than"
    direction = "larger" if ratio > 1 else "smaller"
    return f"{abs(ratio - 1.0) * 100:.0f} % {direction} than"


def compare(a: float, b: float, what_a: str, what_b: str, *,
            tolerance: float = EQUAL_TOLERANCE) -> str:
    """One sentence comparing ``a`` (``what_a``) with ``b`` (``what_b``).

    Parameters
    ----------
    a, b : float
        The two numbers (same units).
    what_a, what_b : str
        What each number is, e.g. ``"the posterior sd"``.
    tolerance : float, default=EQUAL_TOLERANCE
        See :func:`ratio_words`.

    Returns
    -------
    str
        E.g. ``"the posterior sd (0.01) is 3 times smaller than the CV scatter (0.03)."``
    """
    ratio = a / b if b not in (0, 0.0) else math.nan
    return (f"{what_a} ({a:.3g}) is {ratio_words(ratio, tolerance=tolerance)} "
            f"{what_b} ({b:.3g}).")
