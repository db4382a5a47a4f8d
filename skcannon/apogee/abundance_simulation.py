"""A 5-label spectrum generator for offline work: [Mg/Fe] and [Si/Fe] act through their own
ASPCAP windows (SIMULATED spectra, never real ones).

No labelled real spectra with [Mg/Fe] and [Si/Fe] are available offline, and the published
reference model (``cannon_apokasc_dr12``, :mod:`skcannon.apogee.reference`) has one alpha label
only. This generator splits that alpha response by element:

* inside ASPCAP's Mg windows (bit 5 of ``aspcap_l31c_masks.npy``, mapped onto the 7214-pixel
  grid by :func:`skcannon.apogee.windows.load_element_windows`) the reference model is evaluated
  at alpha = [Mg/Fe];
* inside the Si windows (bit 7) at alpha = [Si/Fe];
* everywhere else at alpha = the star's own [alpha/M] (ASPCAP's PARAM_ALPHA_M, a sixth label
  the 5-label model does not see, as real spectra have O, S, Ca, Ti lines the five labels do
  not describe).

Source of the amplitudes: the [alpha/Fe] response (all its terms, cross terms included) of the
published Cannon model ``cannon_apokasc_dr12`` (jobovy/apogee, trained on ~1800 APOKASC giants'
DR12 spectra) in the ASPCAP Mg and Si windows. Assumption: the alpha response in an element's
windows is that element's response (Mg and Si dominate the alpha label there). Abundances
outside the reference model's alpha training range (-0.03 ... 0.49) extrapolate its quadratic.
The Mg and Si windows do not overlap; a pixel in both would take the mean of the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from skcannon.apogee.reference import REFERENCE_LABELS, load_reference_model
from skcannon.apogee.windows import load_element_windows

#: The labels of the generator: the lab's five, in order.
WINDOW_MODEL_LABELS = ("TEFF", "LOGG", "FE_H", "MG_FE", "SI_FE")
#: The hidden sixth label, driving the alpha response outside the Mg and Si windows.
WINDOW_MODEL_HIDDEN = "ALPHA_M"
#: Element -> the label its windows respond to.
WINDOW_ELEMENT_LABELS = {"Mg": "MG_FE", "Si": "SI_FE"}
#: Where the amplitudes come from, in words (for provenance and every output).
WINDOW_MODEL_SOURCE = ("simulated: alpha response of the published Cannon model "
                       "cannon_apokasc_dr12 attributed to [Mg/Fe] in ASPCAP's Mg windows and to "
                       "[Si/Fe] in its Si windows (aspcap_l31c_masks), [alpha/M] elsewhere")


@dataclass(frozen=True)
class WindowAbundanceModel:
    """The reference model with [Mg/Fe] and [Si/Fe] acting in their own windows.

    Usable wherever :func:`skcannon.data.simulate.simulate_spectra` takes a model (it has
    ``predict``, ``s2_``, ``pixel_mask_`` and ``wavelength_``).

    Attributes
    ----------
    reference : Cannon
        The published 4-label model (TEFF, LOGG, FE_H, ALPHA_M).
    windows : dict of str to ndarray of bool, shape (n_pixels,)
        The Mg and Si windows on the reference model's grid.
    """

    reference: object
    windows: dict

    @property
    def label_names(self) -> tuple[str, ...]:
        """The five labels (``WINDOW_MODEL_LABELS``)."""
        return WINDOW_MODEL_LABELS

    @property
    def s2_(self) -> np.ndarray:
        """The reference model's intrinsic variance per pixel, shape (n_pixels,)."""
        return self.reference.s2_

    @property
    def pixel_mask_(self) -> np.ndarray:
        """The reference model's usable pixels, shape (n_pixels,)."""
        return self.reference.pixel_mask_

    @property
    def wavelength_(self) -> np.ndarray:
        """The reference model's wavelengths (Angstrom), shape (n_pixels,)."""
        return self.reference.wavelength_

    def predict(self, labels: pd.DataFrame) -> np.ndarray:
        """Noise-free normalized spectra.

        Parameters
        ----------
        labels : DataFrame with columns TEFF, LOGG, FE_H, MG_FE, SI_FE and ALPHA_M
            Physical labels, one row per star. Without ALPHA_M, the mean of MG_FE and SI_FE
            stands in for it.

        Returns
        -------
        ndarray of shape (n_stars, n_pixels)
        """
        labels = pd.DataFrame(labels)
        alpha = (labels[WINDOW_MODEL_HIDDEN] if WINDOW_MODEL_HIDDEN in labels
                 else 0.5 * (labels.MG_FE + labels.SI_FE))
        base = labels[list(REFERENCE_LABELS[:3])].assign(**{REFERENCE_LABELS[3]: alpha})
        flux = self.reference.predict(base[list(REFERENCE_LABELS)])
        total = np.zeros_like(flux)
        count = np.zeros(flux.shape[1])
        for element, name in WINDOW_ELEMENT_LABELS.items():
            inside = self.windows[element]
            own = base.assign(**{REFERENCE_LABELS[3]: labels[name]})[list(REFERENCE_LABELS)]
            total[:, inside] += self.reference.predict(own)[:, inside]
            count += inside
        return np.where(count > 0, total / np.maximum(count, 1), flux)


def load_window_abundance_model(reference_dir: str | Path, windows_path: str | Path
                                ) -> WindowAbundanceModel:
    """The 5-label generator from the shared data.

    Parameters
    ----------
    reference_dir : str or Path
        The published model's directory (``cannon_apokasc_dr12/``).
    windows_path : str or Path
        ASPCAP's window masks (``aspcap_l31c_masks.npy``).

    Returns
    -------
    WindowAbundanceModel

    Raises
    ------
    BadFileError
        A reference or window file is missing or malformed (naming it).
    """
    reference = load_reference_model(reference_dir)
    windows = load_element_windows(windows_path, reference.wavelength_,
                                   elements=tuple(WINDOW_ELEMENT_LABELS))
    return WindowAbundanceModel(reference, windows)
