"""The normalization diagnostic: raw spectrum, fitted continuum, normalized spectrum."""

from __future__ import annotations

import numpy as np

from skcannon.plotting.common import contiguous_segments, new_figure, plot_segments
from skcannon.spectra import FLUX, IVAR


def _masked(values: np.ndarray, ivar: np.ndarray) -> np.ndarray:
    return np.where(ivar > 0, values, np.nan)


def normalization_figure(wavelength: np.ndarray, regridded: np.ndarray, normalized: np.ndarray,
                         continuum: np.ndarray, continuum_pixels: np.ndarray, *,
                         title: str = ""):
    """Three panels for one star, drawn from the preprocessing's own arrays (nothing is
    preprocessed again).

    Parameters
    ----------
    wavelength : ndarray, shape (n_pixels,)
    regridded : ndarray, shape (3, n_pixels)
        The star's masked, regridded spectrum before the continuum division.
    normalized : ndarray, shape (3, n_pixels)
        The same star normalized.
    continuum : ndarray, shape (n_pixels,)
        The fitted pseudo-continuum.
    continuum_pixels : ndarray of bool, shape (n_pixels,)
        The pixels the continuum was fitted to (marked where the star's pixel is good).
    title : str, default=""
        Title of the top panel (none when empty).

    Returns
    -------
    matplotlib.figure.Figure
        Top: raw flux with the continuum pixels marked; middle: the fitted pseudo-continuum
        over the raw flux; bottom: the normalized flux with its uncertainty.
    """
    raw = _masked(regridded[FLUX], regridded[IVAR])
    used = np.asarray(continuum_pixels, bool) & (regridded[IVAR] > 0)
    norm = _masked(normalized[FLUX], normalized[IVAR])
    sigma = _masked(1 / np.sqrt(np.where(normalized[IVAR] > 0, normalized[IVAR], 1)),
                    normalized[IVAR])
    figure, axes = new_figure(3, 1, width=10, height=2.4, sharex=True)
    top, middle, bottom = axes[:, 0]
    plot_segments(top, wavelength, raw, lw=0.4, color="0.3", label="raw flux")
    plot_segments(middle, wavelength, raw, lw=0.4, color="0.3", label="raw flux")
    plot_segments(middle, wavelength, continuum, color="tab:red", lw=1.2,
                  label="pseudo-continuum")
    for part in contiguous_segments(wavelength):   # no band across a chip gap
        bottom.fill_between(wavelength[part], (norm - sigma)[part], (norm + sigma)[part],
                            color="tab:blue", alpha=0.3, lw=0)
    plot_segments(bottom, wavelength, norm, lw=0.4, color="tab:blue", label="normalized flux")
    top.plot(wavelength[used], raw[used], ".", ms=2.5, color="tab:orange",
             label="continuum pixels")
    bottom.axhline(1, color="k", lw=0.6, ls="--")
    bottom.set_ylim(0.4, 1.25)
    unit = r"($10^{-17}$ erg s$^{-1}$ cm$^{-2}$ $\AA^{-1}$)"
    top.set_ylabel(f"flux\n{unit}", fontsize=8)
    middle.set_ylabel(f"flux\n{unit}", fontsize=8)
    bottom.set_ylabel("normalized flux")
    bottom.set_xlabel(r"vacuum wavelength ($\AA$)")
    for ax in (top, middle, bottom):
        ax.legend(loc="lower left", fontsize=7, frameon=False)
    if title:
        top.set_title(title)
    return figure


def star_normalization_figure(spectrum, normalized_spectra, *, index: int = 0):
    """:func:`normalization_figure` of star ``index`` of a
    :class:`skcannon.data.build.NormalizedSpectra`, titled with the star's id, field and SNR.

    Parameters
    ----------
    spectrum : ApStarSpectrum
        The star's read apStar spectrum (its ``apogee_id``, ``field`` and ``snr`` are used).
    normalized_spectra : NormalizedSpectra
        The preprocessing's arrays of the stars.
    index : int, default=0
        The star's row in ``normalized_spectra``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    view = normalized_spectra
    return normalization_figure(
        view.wavelength, view.regridded[index], view.normalized[index], view.continuum[index],
        view.continuum_pixels,
        title=f"{spectrum.apogee_id} ({spectrum.field}, SNR {spectrum.snr:.0f})")
