"""The polynomial vectorizer: design matrix and its Jacobian, for any list of terms.

Default terms, for labels l_1..l_L (already scaled) up to ``order``: ``[1, l_1, ..., l_L,
l_1 l_1, l_1 l_2, ..., l_L l_L, l_1 l_1 l_1, ...]`` - the linear terms, then every product of
two labels l_i l_j with i <= j in row-major order, then (order 3) every product of three. For 5
labels at order 2 that is 1 + 5 + 15 = 21 terms; for 4 labels the order of the published APOKASC
model (1, l1..l4, l1l1, l1l2, l1l3, l1l4, l2l2, l2l3, l2l4, l3l3, l3l4, l4l4).

Explicit term lists use the label-vector notation of other Cannon implementations: terms
separated by spaces, factors by ``*``, powers by ``^``, e.g.
``"TEFF^4 TEFF^3 TEFF^2 TEFF LOGG^2 LOGG TEFF*LOGG PARAM_M_H"``. The constant term is always
first; every label needs its linear term (the first guess of label fitting reads it).

One object serves training, prediction, gradient spectra, label fitting, MCMC and the model file
(which stores the exponents).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations_with_replacement

import numpy as np

#: Highest ``order`` of the default term lists.
MAX_ORDER = 3


def default_terms(n_labels: int, order: int) -> list[tuple[int, ...]]:
    """The default terms up to ``order``: each a sorted tuple of label indices."""
    terms: list[tuple[int, ...]] = [()]
    for degree in range(1, order + 1):
        terms += list(combinations_with_replacement(range(n_labels), degree))
    return terms


def parse_terms(spec: str, label_names: Sequence[str]) -> list[tuple[int, ...]]:
    """Terms written in label-vector notation (see the module docstring), constant first.

    Raises
    ------
    ValueError
        Naming the token that is not a product of known labels with positive integer powers,
        a repeated term, or a label without its linear term.
    """
    if not isinstance(spec, str) or not spec.split():
        raise ValueError(f"terms must be a non-empty string of terms, got {spec!r}")
    names = list(label_names)
    terms: list[tuple[int, ...]] = [()]
    for token in spec.split():
        term: list[int] = []
        for factor in token.split("*"):
            name, _, power = factor.partition("^")
            if name not in names:
                raise ValueError(f"term {token!r}: {name!r} is not one of the labels {names}")
            if power and (not power.isdigit() or int(power) < 1):
                raise ValueError(f"term {token!r}: power {power!r} is not a positive integer")
            term += [names.index(name)] * (int(power) if power else 1)
        key = tuple(sorted(term))
        if key in terms:
            raise ValueError(f"term {token!r} appears twice")
        terms.append(key)
    missing = [names[i] for i in range(len(names)) if (i,) not in terms]
    if missing:
        raise ValueError(f"terms lack the linear term of {', '.join(missing)}")
    return terms


def format_terms(terms: Sequence[tuple[int, ...]], label_names: Sequence[str]) -> str:
    """The inverse of :func:`parse_terms` (the constant term is implied)."""
    out = []
    for term in terms:
        if term:
            counts = {i: term.count(i) for i in dict.fromkeys(term)}
            out.append("*".join(label_names[i] + (f"^{c}" if c > 1 else "")
                                for i, c in counts.items()))
    return " ".join(out)


class PolynomialVectorizer:
    """Polynomial terms of ``n_labels`` scaled labels.

    Parameters
    ----------
    n_labels : int
    order : int
        Degree of the default terms (1 to :data:`MAX_ORDER`); ignored when ``terms`` is given.
    terms : sequence of tuple of int, optional
        Explicit terms, each the label indices multiplied (``()`` the constant, first).

    Attributes
    ----------
    terms : list of tuple of int
        Label indices multiplied in each term (``()`` is the constant term).
    exponents : ndarray of int, shape (n_terms, n_labels)
        Power of each label in each term.
    """

    def __init__(self, n_labels: int, *, order: int = 2,
                 terms: Sequence[tuple[int, ...]] | None = None) -> None:
        if n_labels < 1:
            raise ValueError(f"need at least one label, got {n_labels}")
        if terms is None:
            if order not in range(1, MAX_ORDER + 1):
                raise ValueError(f"order must be 1 to {MAX_ORDER}, got {order}")
            terms = default_terms(n_labels, order)
        self.terms = [tuple(sorted(int(i) for i in t)) for t in terms]
        if not self.terms or self.terms[0] != ():
            raise ValueError("the first term must be the constant term")
        if any(i < 0 or i >= n_labels for t in self.terms for i in t):
            raise ValueError(f"terms name labels outside 0..{n_labels - 1}")
        if len(set(self.terms)) != len(self.terms):
            raise ValueError("terms repeat")
        self.n_labels = n_labels
        self.exponents = np.zeros((len(self.terms), n_labels), dtype=int)
        for row, term in enumerate(self.terms):
            np.add.at(self.exponents[row], list(term), 1)
        self.order = int(self.exponents.sum(axis=1).max())

    @classmethod
    def from_exponents(cls, exponents: np.ndarray) -> PolynomialVectorizer:
        """The vectorizer whose terms have these powers (the inverse of :attr:`exponents`).

        Parameters
        ----------
        exponents : array_like of int, shape (n_terms, n_labels)
            Power of each label in each term (the first row all zeros: the constant).

        Returns
        -------
        PolynomialVectorizer

        Raises
        ------
        ValueError
            Not a 2-d table of non-negative integers, or not valid terms (see ``__init__``).
        """
        exponents = np.asarray(exponents)
        if exponents.ndim != 2 or not np.issubdtype(exponents.dtype, np.integer) \
                or np.any(exponents < 0):
            raise ValueError(f"term exponents must be a 2-d table of non-negative integers; "
                             f"got {exponents.dtype} {exponents.shape}")
        labels = np.arange(exponents.shape[1])
        return cls(exponents.shape[1], terms=[tuple(np.repeat(labels, row)) for row in exponents])

    @property
    def n_terms(self) -> int:
        """Number of terms (columns of the design matrix)."""
        return len(self.terms)

    def term_names(self, label_names) -> list[str]:
        """Human-readable names of the terms, e.g. ``TEFF*LOGG``."""
        return ["1" if not t else "*".join(label_names[i] for i in t) for t in self.terms]

    def term_labels(self) -> np.ndarray:
        """Which labels each term involves, shape (n_terms, n_labels) bool."""
        return self.exponents > 0

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
        return np.prod(self._powers(self._check(labels)), axis=2)

    def _powers(self, labels: np.ndarray) -> np.ndarray:
        """``labels[:, None, :] ** exponents`` (n_stars, n_terms, n_labels), each distinct
        power computed once per label (a table of powers 0..order) and gathered: the same
        values as the elementwise power, for a fraction of its cost."""
        powers = np.arange(self.order + 1, dtype=self.exponents.dtype)
        table = labels[:, None, :] ** powers[None, :, None]               # (n, order + 1, L)
        return table[:, self.exponents, np.arange(self.n_labels)[None, :]]

    def jacobian(self, labels: np.ndarray) -> np.ndarray:
        """Derivatives of the terms with respect to the scaled labels.

        Returns
        -------
        ndarray, shape (n_stars, n_terms, n_labels)
        """
        labels = self._check(labels)
        powers = self._powers(labels)                                   # (n, k, L)
        out = np.empty((labels.shape[0], self.n_terms, self.n_labels))
        every = np.arange(self.n_labels)
        for j in range(self.n_labels):                                  # labels, not pixels
            e = self.exponents[:, j]
            others = np.prod(powers[:, :, every != j], axis=2)          # (n, k)
            out[:, :, j] = e * labels[:, None, j] ** np.maximum(e - 1, 0) * others
        return out

    def _check(self, labels: np.ndarray) -> np.ndarray:
        labels = np.atleast_2d(np.asarray(labels, dtype=float))
        if labels.shape[1] != self.n_labels:
            raise ValueError(f"labels have {labels.shape[1]} columns; the model has "
                             f"{self.n_labels} labels")
        return labels
