"""Comparison sentences are computed from the numbers beside them."""

from __future__ import annotations

import pandas as pd
import pytest

from skcannon.report.sections import posterior_sentences
from skcannon.report.wording import compare, ratio_words


@pytest.mark.parametrize(("ratio", "words"), [
    (1.0, "equal (within 0 %) to"), (1.15, "equal (within 15 %) to"),
    (0.7, "30 % smaller than"), (1.5, "50 % larger than"),
    (0.25, "4 times smaller than"), (1265.0, "1.26e+03 times larger than"),
    (float("nan"), "not comparable with"), (0.0, "not comparable with")])
def test_ratio_words(ratio, words):
    assert ratio_words(ratio) == words


def test_compare_names_both_numbers():
    assert compare(0.01, 0.04, "the posterior sd", "the CV scatter") == (
        "the posterior sd (0.01) is 4 times smaller than the CV scatter (0.04).")


def test_posterior_sentences_follow_the_table():
    table = pd.DataFrame({"label": ["TEFF"], "posterior_sd": [12.0], "optimizer_sigma": [11.8],
                          "cv_scatter": [48.0]})
    text = posterior_sentences(table)
    assert "TEFF: the posterior sd (12) is equal (within 2 %) to the optimizer's" in text
    assert "4 times smaller than the cross-validation scatter (48)" in text
    # the star 0 case of issue 23: a posterior piled on the prior's edge
    table.loc[0, ["posterior_sd", "optimizer_sigma", "cv_scatter"]] = [0.0076, 0.5, 9.6]
    text = posterior_sentences(table)
    assert "equal" not in text
    assert "65.8 times smaller than the optimizer's formal uncertainty (0.5)" in text
    assert "1.26e+03 times smaller than the cross-validation scatter" in text
    table.loc[0, "posterior_sd"] = 30.0
    assert "60 times larger than the optimizer's" in posterior_sentences(table)
    assert "cross-validation" not in posterior_sentences(table.drop(columns="cv_scatter"))
