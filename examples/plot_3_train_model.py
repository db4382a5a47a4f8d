"""
Train a Cannon model and compare it with data
=============================================

Simulate a training set from the published reference model at real DR12 giant labels (the
shared data hold no large set of real labelled spectra), train a Cannon on it, save and reload
the model file, and compare the model with a real DR17 spectrum at its fitted labels.
"""

import numpy as np

from skcannon.apogee import read_apstar
from skcannon.apogee.label_tables import dr12_giant_labels
from skcannon.apogee.reference import REFERENCE_LABELS, load_reference_model
from skcannon.data.build import default_preprocessor
from skcannon.data.simulate import noise_templates_from_apstar, simulate_spectra
from skcannon.model import Cannon
from skcannon.pipeline.resources import find_shared
from skcannon.plotting import model_vs_data_figure, save_figure
from skcannon.spectra import stack_spectra

shared = find_shared() / "apogee"
reference = load_reference_model(shared / "reference" / "cannon_apokasc_dr12")
labels = dr12_giant_labels(shared / "labels" / "apogee_dr12_labels.csv", REFERENCE_LABELS)
labels = labels.sample(800, random_state=0).reset_index(drop=True)
apstar = sorted((shared / "dr17" / "stars").rglob("apStar-dr17-*.fits"))
rng = np.random.default_rng(0)
X = simulate_spectra(reference, labels, rng.uniform(50, 250, len(labels)), rng,
                     noise_templates_from_apstar(apstar))

model = Cannon(label_names=REFERENCE_LABELS).fit(labels, X, wavelength=reference.wavelength_)
model.save("model.h5", overwrite=True)
model = Cannon.load("model.h5")
print(f"{model.pixel_mask_.sum()} pixels, median s = {np.median(np.sqrt(model.s2_)):.4f}")

star = read_apstar(apstar[-1])
raw = stack_spectra(star.flux, star.ivar, pixmask=star.pixmask)
spectrum = default_preprocessor(shared / "continuum" / "cannon_cont_pixels_apogee.npz"
                                ).fit_transform(raw)
fit = model.infer_labels(spectrum)
print(fit.to_frame(ids=[star.apogee_id]).iloc[0][list(REFERENCE_LABELS)])
figure = model_vs_data_figure(model.wavelength_, spectrum[0, 0], spectrum[0, 1],
                              model.predict(fit.labels)[0], title=star.apogee_id)
save_figure(figure, "model_vs_data.png")
