"""The output columns of a labelling run, each declared once.

Every column a run writes (the ``fit`` table, a survey's Parquet parts and FITS catalog) is
declared here with its name, dtype, unit and description, and a boolean flag with its bit in
the packed ``FLAGS`` column. Per-label columns (the label, ``_ERR``, ``_ERR_FORMAL``, the
covariances) come from the label names through declared templates (names from
:mod:`skcannon.labels`). Readers of the schema: :meth:`LabelFit.to_frame
<skcannon.inference.fitting.LabelFit.to_frame>` (the ``FIT`` columns, computed from the
attribute each declares), the survey's input rows and FITS header
(:mod:`skcannon.survey.chunk`, :mod:`skcannon.survey.catalog`) and the documentation table
(:func:`rst_table`). A new column is one declaration here plus the code that computes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from skcannon.labels import LABEL_UNITS, covariance_column, error_column, formal_error_column

#: Column groups, in table order: what the input reader writes, what a fit computes, what the
#: run adds.
INPUT, FIT, RUN = "input", "fit", "run"
#: STATUS of a row whose spectrum was fitted, of one whose file could not be used, of one whose
#: input file is not there, and of one whose spectrum has nothing to fit (see PROBLEM).
STATUS_FITTED, STATUS_BAD_FILE, STATUS_MISSING, STATUS_UNFITTED = (
    "fitted", "bad file", "missing", "unfitted")
#: Name of the packed flag column.
FLAGS = "FLAGS"


@dataclass(frozen=True)
class Column:
    """One output column.

    Attributes
    ----------
    name : str
    dtype : str  ``"str"``, ``"int64"``, ``"float64"`` or ``"bool"``
    description : str  one line (the FITS ``TCOMMn``)
    group : str  :data:`INPUT`, :data:`FIT` or :data:`RUN`
    unit : str  physical unit ("" when none)
    source : str  the LabelFit attribute holding the values (FIT columns; "" otherwise)
    bit : int or None  bit of a boolean flag in ``FLAGS``
    missing : object or None  value of a row without a fit (default: by dtype, see
        :func:`missing_value`)
    """

    name: str
    dtype: str
    description: str
    group: str
    unit: str = ""
    source: str = ""
    bit: int | None = None
    missing: object = None


@dataclass(frozen=True)
class LabelColumns:
    """A template of per-label columns (float64), filled in for each label or pair of labels.

    Attributes
    ----------
    column : callable
        ``column(label) -> name``, or ``column(label, other) -> name`` for pairs.
    description : str
        With ``{label}`` (and ``{other}`` for pairs).
    source : str
        The LabelFit attribute: shape (n_stars, L), or (n_stars, L, L) for pairs.
    pairs : bool, default=False
        One column per pair of labels (i < j) instead of per label.
    """

    column: Callable[..., str]
    description: str
    source: str
    pairs: bool = False


#: Every column that does not depend on the labels, in table order within its group.
COLUMNS: tuple[Column, ...] = (
    Column("PATH", "str", "input file", INPUT),
    Column("SPECTRUM", "int64", "index of the spectrum within its file (0 for a single "
                                "spectrum)", INPUT),
    Column("APOGEE_ID", "str", "2MASS-style APOGEE identifier", INPUT),
    Column("PRODUCT", "str", "spectrum product read", INPUT),
    Column("STATUS", "str", f"'{STATUS_FITTED}', '{STATUS_BAD_FILE}' (unreadable or not "
                            f"fetched), '{STATUS_MISSING}' (no such file) or "
                            f"'{STATUS_UNFITTED}' (nothing to fit): see PROBLEM", INPUT),
    Column("PROBLEM", "str", "why the row has no fit (empty when fitted)", INPUT),
    Column("SNR", "float64", "signal-to-noise ratio from the file's header", INPUT),
    Column("CHI2", "float64", "chi^2 of the best fit over the usable pixels", FIT,
           source="chi2"),
    Column("REDUCED_CHI2", "float64", "chi^2 per degree of freedom", FIT,
           source="reduced_chi2"),
    Column("N_PIXELS", "int64", "pixels used in the fit", FIT, source="n_good"),
    Column("EXCESS_SCATTER", "float64", "extra scatter beyond noise and model s^2 the "
                                        "residuals need (flux)", FIT, source="excess_scatter"),
    Column("CONVERGED", "bool", "the optimizer converged", FIT, source="converged", bit=0),
    Column("ON_BOUND", "bool", "a label ended on a bound (training range +- margin)", FIT,
           source="on_bound", bit=1),
    Column("OUTSIDE_TRAINING", "bool", "the labels lie outside the training set (the convex "
                                       "hull of the training labels; per-label range for "
                                       "models without one)", FIT,
           source="outside_training", bit=2),
    Column("UNLIKE_TRAINING", "bool", "the spectrum is unlike the training spectra "
                                      "(EXCESS_SCATTER large)", FIT, source="unlike_training",
           bit=3),
    Column("STARTS_DISAGREE", "bool", "optimizer starts reached different minima", FIT,
           source="starts_disagree", bit=4),
    Column("CONFIDENT", "bool", "converged, not on a bound, inside the training range, like "
                                "the training set", FIT, source="confident", bit=5),
    Column("LABELS_FIXED", "bool", "some labels were held fixed at given values (see "
                                   "FIXED_LABELS)", FIT, source="labels_fixed", bit=6),
    Column("FIXED_LABELS", "str", "the labels held fixed, comma-separated (empty when none)",
           FIT, source="fixed_names"),
    Column("RV", "float64", "radial velocity fitted with the labels (+ = redshift, relative "
                            "to the input's frame; NaN when not fitted)", FIT, unit="km/s",
           source="rv"),
    Column("RV_ERR", "float64", "1-sigma uncertainty of RV (NaN when not fitted)", FIT,
           unit="km/s", source="rv_err"),
    Column("N_VISITS", "int64", "visits fitted together (Cannon.infer_visits; 0 otherwise)",
           FIT, source="n_visits"),
    Column("RV_CHI2", "float64", "chi^2 of the visits' RVs about their mean (N_VISITS - 1 "
                                 "degrees of freedom; NaN without visits)", FIT,
           source="rv_chi2"),
    Column("RV_VARIABLE", "bool", "the visits' RVs disagree (RV_CHI2's p-value < 1e-4 and a "
                                  "span > 1 km/s): a binary candidate", FIT,
           source="rv_variable", bit=7),
    Column("VISIT_CHI2_EXCESS", "float64", "chi^2 of the joint visit fit above the sum of "
                                           "the visits' own fits (NaN without visits)", FIT,
           source="visit_chi2_excess"),
    Column("BEST_START", "int64", "index of the winning optimizer start", FIT,
           source="best_start"),
    Column("SECOND_CHI2", "float64", "chi^2 of the best start that reached another minimum",
           FIT, source="second_chi2"),
    Column(FLAGS, "int64", "the boolean flags packed: bit b set where the flag of bit b is "
                           "True (FLAGn header keys, docs)", FIT, missing=0),
    Column("MODEL_SHA256", "str",
           "SHA-256 of the model's content: preprocessing, parameters, learned state", RUN),
    Column("SKCANNON_VERSION", "str", "skcannon version that wrote the row", RUN),
)

#: The per-label column templates, in table order: per label (value, error, formal error),
#: then per pair of labels (covariance).
LABEL_COLUMNS: tuple[LabelColumns, ...] = (
    LabelColumns(str, "{label} fitted by the Cannon", "labels"),
    LabelColumns(error_column, "{label} uncertainty (calibrated where the model has a "
                               "calibration, else formal)", "uncertainties"),
    LabelColumns(formal_error_column, "{label} formal (noise-only) uncertainty",
                 "formal_uncertainties"),
    LabelColumns(covariance_column, "covariance of {label} and {other}", "covariance",
                 pairs=True),
)


def columns(group: str | None = None) -> list[Column]:
    """The declared label-independent columns, in order.

    Parameters
    ----------
    group : str, optional
        :data:`INPUT`, :data:`FIT` or :data:`RUN` (default: every group).

    Returns
    -------
    list of Column
    """
    return [c for c in COLUMNS if group is None or c.group == group]


def column(name: str) -> Column:
    """The declared column ``name``.

    Parameters
    ----------
    name : str

    Returns
    -------
    Column

    Raises
    ------
    KeyError
        Naming it, when no column of that name is declared.
    """
    for declared in COLUMNS:
        if declared.name == name:
            return declared
    raise KeyError(f"no declared output column {name!r}")


def flag_bits() -> dict[str, int]:
    """Boolean flag column -> its bit in ``FLAGS``, lowest bit first.

    Returns
    -------
    dict of str -> int

    Raises
    ------
    ValueError
        When two columns declare the same bit.
    """
    bits = {c.name: c.bit for c in COLUMNS if c.bit is not None}
    if len(set(bits.values())) != len(bits):
        raise ValueError(f"flag bits declared twice: {bits}")
    return dict(sorted(bits.items(), key=lambda item: item[1]))


def pack_flags(values: dict) -> np.ndarray:
    """The ``FLAGS`` integers from the flag columns' values.

    Parameters
    ----------
    values : mapping of str -> array_like of bool, shape (n_rows,)
        At least every column of :func:`flag_bits`.

    Returns
    -------
    ndarray of int64, shape (n_rows,)
    """
    packed = None
    for name, bit in flag_bits().items():
        term = np.asarray(values[name], dtype=bool).astype(np.int64) << bit
        packed = term if packed is None else packed | term
    return packed


def _unit(names: Sequence[str]) -> str:
    return " ".join(u for u in (LABEL_UNITS.get(n, "") for n in names) if u)


def label_columns(label_names: Sequence[str]) -> list[tuple[Column, LabelColumns, tuple]]:
    """The per-label columns of a model with ``label_names``, in table order.

    Parameters
    ----------
    label_names : sequence of str

    Returns
    -------
    list of (Column, LabelColumns, index)
        The column, the template it comes from and the label indices (``(i,)`` or ``(i, j)``)
        that select its values from the template's source.
    """
    out = []
    singles = [t for t in LABEL_COLUMNS if not t.pairs]
    for i, name in enumerate(label_names):
        for template in singles:
            out.append((Column(template.column(name), "float64",
                               template.description.format(label=name), FIT,
                               unit=_unit([name]), source=template.source), template, (i,)))
    for template in (t for t in LABEL_COLUMNS if t.pairs):
        for i, name in enumerate(label_names):
            for j in range(i + 1, len(label_names)):
                other = label_names[j]
                out.append((Column(template.column(name, other), "float64",
                                   template.description.format(label=name, other=other), FIT,
                                   unit=_unit([name, other]), source=template.source),
                            template, (i, j)))
    return out


def output_columns(label_names: Sequence[str]) -> list[Column]:
    """Every column of a survey catalog for a model with ``label_names``, in table order.

    Parameters
    ----------
    label_names : sequence of str

    Returns
    -------
    list of Column
        The input columns, the per-label ones, the other fit columns, the run's.
    """
    return [*columns(INPUT), *(c for c, _, _ in label_columns(label_names)), *columns(FIT),
            *columns(RUN)]


def missing_value(declared: Column):
    """The value of a column in a row without a fit (a bad file).

    Parameters
    ----------
    declared : Column

    Returns
    -------
    object
        The column's own ``missing``, else NaN for floats, False for flags, -1 for integers,
        "" for strings.
    """
    if declared.missing is not None:
        return declared.missing
    return {"float64": np.nan, "bool": False, "int64": -1, "str": ""}[declared.dtype]


def rst_table(label_names: Sequence[str] = ("TEFF", "LOGG")) -> str:
    """The columns of a catalog for ``label_names`` as a reStructuredText list-table (no
    Sphinx needed), flag bits included.

    Parameters
    ----------
    label_names : sequence of str, default=("TEFF", "LOGG")
        Labels whose per-label columns are shown as examples.

    Returns
    -------
    str
    """
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 22 8 8 6 56", "",
             "   * - Column", "     - Type", "     - Unit", "     - Bit", "     - Description"]
    for declared in output_columns(label_names):
        bit = "" if declared.bit is None else str(declared.bit)
        lines += [f"   * - ``{declared.name}``", f"     - {declared.dtype}",
                  f"     - {declared.unit}".rstrip(), f"     - {bit}".rstrip(),
                  f"     - {declared.description}"]
    return "\n".join(lines) + "\n"
