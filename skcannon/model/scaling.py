"""Label scaling owned by the model: scaled = (label - offset) / scale, as named fields."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabelScaling:
    """Per-label offset and scale.

    Attributes
    ----------
    names : tuple of str
    offsets, scales : ndarray, shape (n_labels,)
    """

    names: tuple[str, ...]
    offsets: np.ndarray
    scales: np.ndarray

    @classmethod
    def from_training(cls, names, labels: np.ndarray) -> LabelScaling:
        """Centre on the training mean and scale by the training standard deviation."""
        labels = np.asarray(labels, dtype=float)
        scales = labels.std(axis=0)
        if np.any(scales <= 0):
            flat = [n for n, s in zip(names, scales, strict=True) if s <= 0]
            raise ValueError(f"label(s) {', '.join(flat)} do not vary in the training set")
        return cls(tuple(names), labels.mean(axis=0), scales)

    def scale(self, labels: np.ndarray) -> np.ndarray:
        """Physical -> scaled labels, shape (n_stars, n_labels)."""
        return (np.atleast_2d(np.asarray(labels, dtype=float)) - self.offsets) / self.scales

    def unscale(self, scaled: np.ndarray) -> np.ndarray:
        """Scaled -> physical labels, shape (n_stars, n_labels)."""
        return np.atleast_2d(scaled) * self.scales + self.offsets
