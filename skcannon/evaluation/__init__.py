"""How good are the labels: metrics and scorers, cross-validation, outliers explained."""

from skcannon.evaluation.metrics import (
    accuracy_by_snr,
    accuracy_table,
    label_bias,
    label_robust_scatter,
    label_scatter,
    label_scorers,
    pulls,
)
from skcannon.evaluation.outliers import find_outliers
from skcannon.evaluation.validation import (
    RepeatedValidation,
    SplitValidation,
    grid_search,
    held_out_pulls,
    kfold_validate,
    repeated_kfold,
    split_validate,
)

__all__ = ["RepeatedValidation", "SplitValidation", "accuracy_by_snr", "accuracy_table",
           "find_outliers", "grid_search", "held_out_pulls", "kfold_validate", "label_bias",
           "label_robust_scatter", "label_scatter", "label_scorers", "pulls", "repeated_kfold",
           "split_validate"]
