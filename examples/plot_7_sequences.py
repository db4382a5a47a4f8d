"""
Spectra sequences
=================

Model spectra over 16000-16200 Angstrom, offset and colour-coded: (a) [Fe/H] from -1 to +0.5 at
fixed Teff and log g; (b) along the giant branch at [Fe/H] = 0 from log g 3.5 to 0.5, with Teff
following the 6 Gyr MIST isochrone.
"""

import numpy as np

from skcannon.apogee.reference import load_reference_model
from skcannon.data.isochrones import load_isochrone, teff_on_giant_branch
from skcannon.pipeline.resources import find_shared
from skcannon.plotting import save_figure
from skcannon.plotting.science import sequence_figure

shared = find_shared()
model = load_reference_model(shared / "apogee" / "reference" / "cannon_apokasc_dr12")
fehs = np.linspace(-1.0, 0.5, 7)
labels = np.c_[np.full(7, 4700.0), np.full(7, 2.5), fehs, np.full(7, 0.05)]
save_figure(sequence_figure(model, labels, fehs, "[Fe/H]"), "sequence_feh.png")

loggs = np.linspace(3.5, 0.5, 7)
teffs = teff_on_giant_branch(load_isochrone(0.0, 6.0, shared / "isochrones" / "mist_v1.2"),
                             loggs)
labels = np.c_[teffs, loggs, np.zeros(7), np.full(7, 0.05)]
save_figure(sequence_figure(model, labels, loggs, "log g"), "sequence_giant_branch.png")
print(np.c_[loggs, teffs.round()])
