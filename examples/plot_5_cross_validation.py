"""
Cross-validate
==============

Split labelled spectra into halves with ``train_test_split`` (explicit ``random_state``), train
on one, fit the other, and look at bias, scatter, pulls and the one-to-one plot; then k-fold
``cross_validate`` with per-label scorers. Spectra are simulated from the reference model at
real DR12 giant labels.
"""

import numpy as np

from skcannon.apogee.label_tables import dr12_giant_labels
from skcannon.apogee.reference import REFERENCE_LABELS, load_reference_model
from skcannon.data.simulate import noise_templates_from_apstar, simulate_spectra
from skcannon.evaluation.validation import kfold_validate, split_validate
from skcannon.model import Cannon, CannonRegressor
from skcannon.pipeline.resources import find_shared
from skcannon.plotting import one_to_one_figure, pull_figure, save_figure

shared = find_shared() / "apogee"
reference = load_reference_model(shared / "reference" / "cannon_apokasc_dr12")
labels = dr12_giant_labels(shared / "labels" / "apogee_dr12_labels.csv", REFERENCE_LABELS)
labels = labels.sample(1000, random_state=1).reset_index(drop=True)
rng = np.random.default_rng(1)
labels["SNR"] = rng.uniform(50, 250, len(labels))
X = simulate_spectra(reference, labels, labels.SNR.to_numpy(), rng, noise_templates_from_apstar(
    sorted((shared / "dr17" / "stars").rglob("apStar-dr17-*.fits"))))

regressor = CannonRegressor(Cannon(REFERENCE_LABELS))
result = split_validate(regressor, X, labels, random_state=42)
print(result.accuracy)
save_figure(one_to_one_figure(result.reference, result.fit.labels, REFERENCE_LABELS,
                              color=labels.SNR.to_numpy()[result.test_index]), "one_to_one.png")
save_figure(pull_figure(result.pulls, REFERENCE_LABELS), "pulls.png")

folds = kfold_validate(regressor, X,
                       labels[list(REFERENCE_LABELS)].to_numpy(), REFERENCE_LABELS, n_splits=3)
print(folds)
