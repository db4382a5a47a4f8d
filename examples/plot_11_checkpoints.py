"""
The lab's checkpoint PDFs
=========================

Write checkpoints 1 and 2 of the lab from Python: the label corner plot and the normalization
of a star (checkpoint 1), model vs data of a training star and the cross-validation plot
(checkpoint 2). The training set is simulated from the published reference model (the shared
data hold no large set of real labelled spectra), so the lab's named stars are not in it: each
PDF names the stand-in it draws and says why. ``skcannon run`` writes all three checkpoints
(the third with the PyMC posterior of the mystery spectrum); ``skcannon checkpoint N`` writes
one.
"""

import numpy as np

from skcannon.apogee.catalog import QualityCuts
from skcannon.apogee.label_tables import dr12_giant_labels
from skcannon.apogee.reference import REFERENCE_LABELS, load_reference_model
from skcannon.data.build import default_preprocessor, normalize_apstar_files
from skcannon.data.dataset import SpectralDataset
from skcannon.data.simulate import noise_templates_from_apstar, simulate_spectra
from skcannon.evaluation import split_validate
from skcannon.model import Cannon, CannonRegressor
from skcannon.pipeline.resources import find_shared
from skcannon.plotting import one_to_one_figure, save_figure
from skcannon.report import ScienceInputs
from skcannon.report.checkpoints import CheckpointInputs, write_checkpoints

shared = find_shared() / "apogee"
reference = load_reference_model(shared / "reference" / "cannon_apokasc_dr12")
labels = dr12_giant_labels(shared / "labels" / "apogee_dr12_labels.csv", REFERENCE_LABELS)
labels = labels.sample(400, random_state=0).reset_index(drop=True)
apstar = sorted((shared / "dr17" / "stars").rglob("apStar-dr17-*.fits"))
rng = np.random.default_rng(0)
X = simulate_spectra(reference, labels, rng.uniform(50, 250, len(labels)), rng,
                     noise_templates_from_apstar(apstar))
training = SpectralDataset.from_spectra(reference.wavelength_, X, labels)
source = "400 spectra simulated from the reference model at real DR12 giant labels"

validation = split_validate(CannonRegressor(Cannon(list(REFERENCE_LABELS))), training.X,
                            training.labels, random_state=0, wavelength=training.wavelength)
cv_plot = save_figure(one_to_one_figure(validation.reference, validation.fit.labels,
                                        list(REFERENCE_LABELS)), "one_to_one.png")
raw, normalized = normalize_apstar_files(apstar[:1], default_preprocessor(
    shared / "continuum" / "cannon_cont_pixels_apogee.npz"))
science = ScienceInputs(model=validation.model, training=training, validation=validation,
                        raw_spectra=raw, normalized=normalized, cuts=QualityCuts())
inputs = CheckpointInputs(science, source, cross_validation=(
    str(cv_plot), f"Cross-validation plot: fitted vs reference labels of the test half. Data "
                  f"source: {source}."))
for path in write_checkpoints(inputs, "checkpoints", numbers=[1, 2], name="Ada Lovelace"):
    print(path)
