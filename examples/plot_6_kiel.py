"""
Kiel diagram with MIST isochrones
=================================

Fitted labels of simulated spectra in the Kiel diagram (Teff increasing to the left, log g
increasing downward), coloured by [Fe/H], with 6 Gyr MIST v1.2 isochrones at [Fe/H] = 0 and -1;
and the surface gravity of a solar-mass star at 1, 15 and 100 solar radii.
"""

import numpy as np

from skcannon.apogee.label_tables import dr12_giant_labels
from skcannon.apogee.reference import REFERENCE_LABELS, load_reference_model
from skcannon.data.isochrones import load_isochrone, surface_gravity
from skcannon.data.simulate import simulate_spectra
from skcannon.pipeline.resources import find_shared
from skcannon.plotting import save_figure
from skcannon.plotting.science import kiel_figure

shared = find_shared()
model = load_reference_model(shared / "apogee" / "reference" / "cannon_apokasc_dr12")
labels = dr12_giant_labels(shared / "apogee" / "labels" / "apogee_dr12_labels.csv",
                           REFERENCE_LABELS).sample(600, random_state=0)
rng = np.random.default_rng(0)
fit = model.infer_labels(simulate_spectra(model, labels, 100, rng))
isochrones = {f"MIST 6 Gyr, [Fe/H] = {feh:+.1f}":
              load_isochrone(feh, 6.0, shared / "isochrones" / "mist_v1.2")
              for feh in (0.0, -1.0)}
figure = kiel_figure(fit.labels[:, 0], fit.labels[:, 1], fit.labels[:, 2], isochrones)
save_figure(figure, "kiel.png")
print("log g of 1 Msun at 1, 15, 100 Rsun:", surface_gravity(1.0, [1, 15, 100]).round(2))
