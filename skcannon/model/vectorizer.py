"""The quadratic (or any-order) polynomial vectorizer: design matrix and its Jacobian.

Terms, for labels l_1..l_L (already scaled): ``[1, l_1, ..., l_L, l_1 l_1, l_1 l_2, ...,
l_L l_L]`` - the linear terms, then every product l_i l_j with i <= j in row-major order. For 5
labels that is 1 + 5 + 15 = 21 terms; for 4 labels the order of the published APOKASC model
(1, l1..l4, l1l1, l1l2, l1l3, l1l4, l2l2, l2l3, l2l4, l3l3, l3l4, l4l4). One object serves
training, prediction, gradient spectra, label fitting and MCMC.
"""

from __future__ import annotations

from itertools import combinations_with_replacement

import numpy as np


class PolynomialVectorizer:
    """Polynomial terms of ``n_labels`` scaled labels up to degree ``order`` (1 or 2).

    Attributes
    ----------
    terms : list of tuple of int
        Label indices multiplied in each term (``()`` is the constant term).
    """

    def __init__(self, n_labels: int, *, order: int = 2) -> None:
        if n_labels < 1:
            raise ValueError(f"need at least one label, got {n_labels}")
        if order not in (1, 2):
            raise ValueError(f"order must be 1 or 2, got {order}")
        self.n_labels = n_labels
        self.order = order
        self.terms: list[tuple[int, ...]] = [()]
        for degree in range(1, order + 1):
            self.terms += list(combinations_with_replacement(range(n_labels), degree))
        linear = [t for t in self.terms if len(t) == 1]
        quadratic = [t for t in self.terms if len(t) == 2]
        self._linear_index = np.array([self.terms.index(t) for t in linear])
        self._quad_i = np.array([t[0] for t in quadratic], dtype=int)
        self._quad_j = np.array([t[1] for t in quadratic], dtype=int)
        self._quad_index = np.array([self.terms.index(t) for t in quadratic], dtype=int)

    @property
    def n_terms(self) -> int:
        """Number of terms (columns of the design matrix)."""
        return len(self.terms)

    def term_names(self, label_names) -> list[str]:
        """Human-readable names of the terms, e.g. ``TEFF*LOGG``."""
        return ["1" if not t else "*".join(label_names[i] for i in t) for t in self.terms]

    def design_matrix(self, labels: np.ndarray) -> np.ndarray:
        """Design matrix.

        Parameters
        ----------
        labels : ndarray, shape (n_stars, n_labels)
            Scaled labels.

        Returns
        -------
        ndarray, shape (n_stars, n_terms)
        """
        labels = self._check(labels)
        out = np.empty((labels.shape[0], self.n_terms))
        out[:, 0] = 1.0
        out[:, self._linear_index] = labels
        if self.order == 2:
            out[:, self._quad_index] = labels[:, self._quad_i] * labels[:, self._quad_j]
        return out

    def jacobian(self, labels: np.ndarray) -> np.ndarray:
        """Derivatives of the terms with respect to the scaled labels.

        Returns
        -------
        ndarray, shape (n_stars, n_terms, n_labels)
        """
        labels = self._check(labels)
        n = labels.shape[0]
        out = np.zeros((n, self.n_terms, self.n_labels))
        out[:, self._linear_index, np.arange(self.n_labels)] = 1.0
        if self.order == 2:
            rows = self._quad_index
            # d(l_i l_j)/d l_i = l_j and d/d l_j = l_i (twice l_i on the diagonal i == j)
            np.add.at(out, (slice(None), rows, self._quad_i), labels[:, self._quad_j])
            np.add.at(out, (slice(None), rows, self._quad_j), labels[:, self._quad_i])
        return out

    def _check(self, labels: np.ndarray) -> np.ndarray:
        labels = np.atleast_2d(np.asarray(labels, dtype=float))
        if labels.shape[1] != self.n_labels:
            raise ValueError(f"labels have {labels.shape[1]} columns; the model has "
                             f"{self.n_labels} labels")
        return labels
