"""
Normalize spectra
=================

Mask bad pixels, resample onto the 7214-pixel continuum grid and divide by a robust per-chip
pseudo-continuum, as a scikit-learn Pipeline; then draw the normalization diagnostic of a star.
The transformers are survey-free (bits, grids and regions are parameters); ``skcannon.apogee``
supplies APOGEE's, and ``apogee_preprocessor(continuum_pixels)`` is this whole Pipeline.
"""

import numpy as np
from sklearn.pipeline import make_pipeline

from skcannon.apogee import (
    APOGEE_CHIP_REGIONS,
    DEFAULT_BAD_PIXEL_BITS,
    read_apstar,
    stack_apstar,
)
from skcannon.apogee.grids import apstar_wavelength, aspcap_dr12_wavelength
from skcannon.data.build import normalize_spectra
from skcannon.pipeline.resources import find_shared
from skcannon.plotting import save_figure, star_normalization_figure
from skcannon.preprocessing import BitmaskMasker, ContinuumNormalizer, Regridder
from skcannon.spectra import IVAR

shared = find_shared() / "apogee"
files = sorted((shared / "dr17" / "stars").rglob("apStar-dr17-*.fits"))
spectra = [read_apstar(f) for f in files]
X = stack_apstar(spectra)                                # shape (n_stars, 3, 8575)

grid = aspcap_dr12_wavelength()                          # the 7214-pixel continuum grid
preprocessor = make_pipeline(
    BitmaskMasker(DEFAULT_BAD_PIXEL_BITS),                # bits 0-7 and 12 -> ivar 0
    Regridder(apstar_wavelength(), grid),                 # apStar grid -> continuum grid
    ContinuumNormalizer(shared / "continuum" / "cannon_cont_pixels_apogee.npz",
                        wavelength=grid, regions=APOGEE_CHIP_REGIONS, order=3),  # per chip
)
normalized = preprocessor.fit_transform(X)               # shape (n_stars, 3, 7214)
for spectrum, row in zip(spectra, normalized, strict=True):
    print(f"{spectrum.apogee_id}: {np.mean(row[IVAR] == 0):.1%} of pixels masked")

# the same steps, keeping the regridded input and the fitted continuum for the diagnostic
view = normalize_spectra(X, preprocessor)
figure = star_normalization_figure(spectra[0], view)
print("saved", save_figure(figure, "normalization.png"))
