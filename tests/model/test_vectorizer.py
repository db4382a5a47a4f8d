"""The polynomial vectorizer: term order, design matrix and analytic Jacobian."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skcannon.model import PolynomialVectorizer


def test_term_order_matches_published_4_label_model():
    vec = PolynomialVectorizer(4)
    assert vec.terms == [(), (0,), (1,), (2,), (3,), (0, 0), (0, 1), (0, 2), (0, 3), (1, 1),
                         (1, 2), (1, 3), (2, 2), (2, 3), (3, 3)]
    assert PolynomialVectorizer(5).n_terms == 21
    assert PolynomialVectorizer(5).term_names(list("abcde"))[6] == "a*a"


def test_design_matrix_by_hand():
    labels = np.array([[2.0, 3.0]])
    assert PolynomialVectorizer(2).design_matrix(labels).tolist() == [[1, 2, 3, 4, 6, 9]]
    assert PolynomialVectorizer(2, order=1).design_matrix(labels).tolist() == [[1, 2, 3]]


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(0, 1000))
def test_jacobian_matches_finite_differences(n_labels, seed):
    vec = PolynomialVectorizer(n_labels)
    labels = np.random.default_rng(seed).normal(size=(3, n_labels))
    jac = vec.jacobian(labels)
    h = 1e-6
    for i in range(n_labels):
        step = np.zeros(n_labels)
        step[i] = h
        numeric = (vec.design_matrix(labels + step) - vec.design_matrix(labels - step)) / (2 * h)
        np.testing.assert_allclose(jac[:, :, i], numeric, atol=1e-7)


def test_wrong_label_count():
    with pytest.raises(ValueError, match="3 columns; the model has 2 labels"):
        PolynomialVectorizer(2).design_matrix(np.ones((1, 3)))
