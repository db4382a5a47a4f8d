"""Label names, units, axis names and output column names, defined once.

Labels are named as in the APOGEE allStar catalog (``TEFF``, ``LOGG``, ``FE_H`` ...): the model
core uses these names only as strings, so any other naming works too (units and pretty names
then fall back to the name itself).
"""

from __future__ import annotations

from collections.abc import Iterable

#: Labels the Cannon learns by default, in order.
DEFAULT_LABELS = ("TEFF", "LOGG", "FE_H", "MG_FE", "SI_FE")
#: Labels recognised in tables when none are named: the mission's five, then [alpha/M], [M/H].
KNOWN_LABELS = ("TEFF", "LOGG", "FE_H", "MG_FE", "SI_FE", "ALPHA_M", "M_H")
#: Physical units of the labels, for axis labels and tables.
LABEL_UNITS = {"TEFF": "K", "LOGG": "dex", "FE_H": "dex", "MG_FE": "dex", "SI_FE": "dex",
               "M_H": "dex", "ALPHA_M": "dex"}
#: Pretty names of the labels, for plots (no LaTeX needed: matplotlib mathtext).
LABEL_TEX = {"TEFF": r"$T_\mathrm{eff}$", "LOGG": r"$\log g$", "FE_H": "[Fe/H]",
             "MG_FE": "[Mg/Fe]", "SI_FE": "[Si/Fe]", "M_H": "[M/H]", "ALPHA_M": r"[$\alpha$/M]"}


def label_axis_name(name: str) -> str:
    """Axis label with units, e.g. '$T_\\mathrm{eff}$ (K)'."""
    unit = LABEL_UNITS.get(name, "")
    return f"{LABEL_TEX.get(name, name)}" + (f" ({unit})" if unit else "")


def present_labels(columns: Iterable[str]) -> list[str]:
    """The :data:`KNOWN_LABELS` present in ``columns``, in that order."""
    columns = set(columns)
    return [name for name in KNOWN_LABELS if name in columns]


# -- output column names ---------------------------------------------------------------------
def error_column(name: str) -> str:
    """Column of a label's 1-sigma uncertainty (allStar style): ``TEFF_ERR``."""
    return f"{name}_ERR"


def covariance_column(first: str, second: str) -> str:
    """Column of the covariance of two labels: ``COV_TEFF_LOGG``."""
    return f"COV_{first}_{second}"


def reference_column(name: str) -> str:
    """Column of a label's reference (e.g. ASPCAP) value beside a fitted one: ``TEFF_REF``."""
    return f"{name}_REF"


def fitted_column(name: str) -> str:
    """Column of a label's fitted value beside its reference: ``TEFF_FIT``."""
    return f"{name}_FIT"


def offset_column(name: str) -> str:
    """Column of (fitted - reference) in robust scatters: ``TEFF_OFF_SIGMA``."""
    return f"{name}_OFF_SIGMA"
