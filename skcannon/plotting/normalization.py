"""The normalization diagnostic: raw spectrum, fitted continuum, normalized spectrum."""

from __future__ import annotations

import numpy as np

from skcannon.plotting.common import new_figure
from skcannon.spectra import FLUX, IVAR, stack_spectra


def normalization_figure(spectrum, preprocessor, title: str | None = None):
    """Three panels for one star.

    Parameters
    ----------
    spectrum : ApStarSpectrum
        The raw spectrum (as read).
    preprocessor : fitted Pipeline
        masking -> regridding -> :class:`ContinuumNormalizer` (its last step).

    Returns
    -------
    matplotlib.figure.Figure
        Top: raw flux on the normalization grid with the continuum pixels marked; middle: the
        fitted pseudo-continuum over the raw flux; bottom: the normalized flux with its
        uncertainty.
    """
    X = stack_spectra(spectrum.flux, spectrum.ivar, pixmask=spectrum.pixmask)
    regridded = preprocessor[:-1].transform(X)[0]
    normalizer = preprocessor[-1]
    normalized, continuum = normalizer.normalize(regridded[None])
    normalized, continuum = normalized[0], continuum[0]
    wave = normalizer.wavelength_
    good = regridded[IVAR] > 0
    raw = np.where(good, regridded[FLUX], np.nan)
    used = normalizer.continuum_mask_ & good

    norm = np.where(normalized[IVAR] > 0, normalized[FLUX], np.nan)
    sigma = np.where(normalized[IVAR] > 0, 1 / np.sqrt(np.where(normalized[IVAR] > 0,
                                                                 normalized[IVAR], 1)), np.nan)
    figure, axes = new_figure(3, 1, width=10, height=2.4, sharex=True)
    top, middle, bottom = axes[:, 0]
    for k in range(3):  # chip by chip, so no line crosses a chip gap
        chip = normalizer.chip_index_ == k
        first = k == 0
        top.plot(wave[chip], raw[chip], lw=0.4, color="0.3", label="raw flux" if first else None)
        middle.plot(wave[chip], raw[chip], lw=0.4, color="0.3",
                    label="raw flux" if first else None)
        middle.plot(wave[chip], continuum[chip], color="tab:red", lw=1.2,
                    label="pseudo-continuum" if first else None)
        bottom.fill_between(wave[chip], (norm - sigma)[chip], (norm + sigma)[chip],
                            color="tab:blue", alpha=0.3, lw=0)
        bottom.plot(wave[chip], norm[chip], lw=0.4, color="tab:blue",
                    label="normalized flux" if first else None)
    top.plot(wave[used], raw[used], ".", ms=2.5, color="tab:orange", label="continuum pixels")
    bottom.axhline(1, color="k", lw=0.6, ls="--")
    bottom.set_ylim(0.4, 1.25)
    unit = r"($10^{-17}$ erg s$^{-1}$ cm$^{-2}$ $\AA^{-1}$)"
    top.set_ylabel(f"flux\n{unit}", fontsize=8)
    middle.set_ylabel(f"flux\n{unit}", fontsize=8)
    bottom.set_ylabel("normalized flux")
    bottom.set_xlabel(r"vacuum wavelength ($\AA$)")
    for ax in (top, middle, bottom):
        ax.legend(loc="lower left", fontsize=7, frameon=False)
    top.set_title(title or f"{spectrum.apogee_id} ({spectrum.field}, SNR {spectrum.snr:.0f})")
    return figure
