"""An independent spectrum generator: a per-pixel neural-network emulator of synthetic spectra.

Spectra the Cannon did not generate are what tests and benchmarks of radial velocities, visits,
binaries, label noise and continuum-pixel discovery need: accuracy measured on the Cannon's own
simulations says little. The emulator (The Payne's form, Ting et al. 2019; El-Badry et al. 2018's
BinSpec network of Kurucz FGK dwarfs) maps labels to continuum-normalized rest-frame flux through
one hidden sigmoid layer per pixel::

    s = (labels - x_min) / (x_max - x_min) - 0.5
    flux = sum_j w1[p, j] * sigmoid(sum_k w0[p, j, k] * s_k + b0[p, j]) + b1[p]

The file is ``../shared/apogee/emulators/binspec_dwarf_nn_normalized.npz`` (see its README).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skcannon.errors import BadFileError

EMULATOR_KEYS = ("w_array_0", "w_array_1", "b_array_0", "b_array_1", "x_min", "x_max")
EMULATOR_LABELS = ("TEFF", "LOGG", "FE_H", "ALPHA_FE", "VMACRO")


@dataclass(frozen=True)
class SpectrumEmulator:
    """Labels -> normalized flux, vectorized over stars and pixels.

    Attributes
    ----------
    w0 : ndarray of shape (n_pixels, n_hidden, n_labels)
    b0 : ndarray of shape (n_pixels, n_hidden)
    w1 : ndarray of shape (n_pixels, n_hidden)
    b1 : ndarray of shape (n_pixels,)
    label_min, label_max : ndarray of shape (n_labels,)
        The labels' training range (stay inside it).
    label_names : tuple of str, default=EMULATOR_LABELS
    """

    w0: np.ndarray
    b0: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    label_min: np.ndarray
    label_max: np.ndarray
    label_names: tuple[str, ...] = EMULATOR_LABELS

    @classmethod
    def from_npz(cls, path: str | Path) -> SpectrumEmulator:
        """Read the emulator's weights from an ``.npz`` file (no pickle).

        Parameters
        ----------
        path : str or Path
            A file with the arrays named in ``EMULATOR_KEYS``.

        Returns
        -------
        SpectrumEmulator
        """
        with np.load(path, allow_pickle=False) as arrays:
            missing = [key for key in EMULATOR_KEYS if key not in arrays]
            if missing:
                raise BadFileError(path, f"not an emulator file (missing {', '.join(missing)})")
            weights = {key: np.asarray(arrays[key], dtype=float) for key in EMULATOR_KEYS}
        return cls(
            w0=weights["w_array_0"], b0=weights["b_array_0"], w1=weights["w_array_1"],
            b1=weights["b_array_1"], label_min=weights["x_min"], label_max=weights["x_max"],
        )

    @property
    def n_pixels(self) -> int:
        """Number of pixels of the emulated spectra."""
        return int(self.b1.shape[0])

    def flux(self, labels: np.ndarray) -> np.ndarray:
        """Normalized rest-frame flux of each row of labels.

        Parameters
        ----------
        labels : array-like of shape (n_stars, n_labels) or (n_labels,)
            In the order of ``label_names``.

        Returns
        -------
        ndarray of shape (n_stars, n_pixels) (or (n_pixels,) for one star)
        """
        labels = np.asarray(labels, dtype=float)
        one = labels.ndim == 1
        scaled = (np.atleast_2d(labels) - self.label_min) / (self.label_max - self.label_min) - 0.5
        inside = np.einsum("pjk,nk->npj", self.w0, scaled) + self.b0
        flux = np.einsum("pj,npj->np", self.w1, 1.0 / (1.0 + np.exp(-inside))) + self.b1
        return flux[0] if one else flux

    def sample_labels(self, n_stars: int, seed: int, margin: float = 0.1) -> np.ndarray:
        """Labels drawn uniformly inside the emulator's range, shrunk by ``margin`` on each side.

        Parameters
        ----------
        n_stars : int
        seed : int
            Seed of the random generator.
        margin : float, default=0.1
            Fraction of each label's range left out at both ends.

        Returns
        -------
        ndarray of shape (n_stars, n_labels)
        """
        rng = np.random.default_rng(seed)
        span = self.label_max - self.label_min
        low, high = self.label_min + margin * span, self.label_max - margin * span
        return rng.uniform(low, high, size=(n_stars, span.size))
