"""
Gradient spectra and where the Mg and Si lines are
==================================================

Gradient spectra df/dlabel of the published reference model, with ASPCAP's Mg and Si windows
marked, the intrinsic scatter per pixel, and the answer to: do the pixels most sensitive to
[alpha/M] lie in Mg and Si lines more often than by chance?
"""

import numpy as np

from skcannon.apogee.reference import load_reference_model
from skcannon.apogee.windows import load_element_windows, window_enrichment
from skcannon.pipeline.resources import find_shared
from skcannon.plotting import save_figure
from skcannon.plotting.science import gradient_figure, scatter_figure

shared = find_shared() / "apogee"
model = load_reference_model(shared / "reference" / "cannon_apokasc_dr12")
windows = load_element_windows(shared / "aspcap_windows" / "aspcap_l31c_masks.npy",
                               model.wavelength_)
point = np.array([4700.0, 2.5, 0.0, 0.05])               # Teff, log g, [Fe/H], [alpha/M]
save_figure(gradient_figure(model, point, windows), "gradients.png")
save_figure(scatter_figure(model, windows), "scatter.png")
alpha = model.gradient(point[None])[0, 3]
for element in ("Mg", "Si"):
    result = window_enrichment(alpha, windows[element], model.pixel_mask_, top_n=100)
    print(f"{element}: {result['fraction']:.0%} of the top-100 |d f/d[alpha/M]| pixels, "
          f"{result['chance_fraction']:.1%} by chance (p = {result['p_value']:.2g})")
