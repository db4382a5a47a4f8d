"""Label scaling owned by the model: scaled = (label - offset) / scale, as named fields."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabelScaling:
    """Per-label offset and scale: ``scaled = (label - offset) / scale``.

    Attributes
    ----------
    names : tuple of str of length n_labels
        Label names, in column order.
    offsets : ndarray of shape (n_labels,)
        Subtracted from each label (physical units).
    scales : ndarray of shape (n_labels,)
        Divides each label after the offset (physical units, > 0).
    """

    names: tuple[str, ...]
    offsets: np.ndarray
    scales: np.ndarray

    @classmethod
    def from_training(cls, names, labels: np.ndarray) -> LabelScaling:
        """Centre on the training mean and scale by the training standard deviation.

        Parameters
        ----------
        names : sequence of str of length n_labels
            Label names, in column order.
        labels : ndarray of shape (n_stars, n_labels)
            Training labels in physical units.

        Returns
        -------
        LabelScaling

        Raises
        ------
        ValueError
            Naming the labels that do not vary in the training set.
        """
        labels = np.asarray(labels, dtype=float)
        scales = labels.std(axis=0)
        if np.any(scales <= 0):
            flat = [n for n, s in zip(names, scales, strict=True) if s <= 0]
            raise ValueError(f"label(s) {', '.join(flat)} do not vary in the training set")
        return cls(tuple(names), labels.mean(axis=0), scales)

    def scale(self, labels: np.ndarray) -> np.ndarray:
        """Physical -> scaled labels.

        Parameters
        ----------
        labels : array_like of shape (n_stars, n_labels) or (n_labels,)
            Labels in physical units (one star may be given as a 1-D array).

        Returns
        -------
        ndarray of shape (n_stars, n_labels)
        """
        return (np.atleast_2d(np.asarray(labels, dtype=float)) - self.offsets) / self.scales

    def unscale(self, scaled: np.ndarray) -> np.ndarray:
        """Scaled -> physical labels (the inverse of :meth:`scale`).

        Parameters
        ----------
        scaled : array_like of shape (n_stars, n_labels) or (n_labels,)
            Scaled labels.

        Returns
        -------
        ndarray of shape (n_stars, n_labels)
        """
        return np.atleast_2d(scaled) * self.scales + self.offsets
