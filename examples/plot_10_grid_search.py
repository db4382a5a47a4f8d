"""
Tune the model and its preprocessing with GridSearchCV
======================================================

The fitted Pipeline is the model: masking -> regridding -> continuum normalization ->
``CannonRegressor(Cannon(...))``. ``GridSearchCV`` tunes the Cannon's parameters through the
regressor (``cannonregressor__cannon__order``, ``__regularization``, ``__n_error_factors``:
each declared once, in ``Cannon``) and a preprocessing parameter
(``continuumnormalizer__order``) in one search, scored on held-out labels. The best Pipeline
is saved with ``skcannon.save`` and loaded back ready to label raw spectra.

Raw-like apStar spectra are simulated from the reference model at real DR12 giant labels, with
the continua, error shapes and masks of the real DR17 apStar files.
"""

import numpy as np
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline

import skcannon
from skcannon.apogee.label_tables import dr12_giant_labels
from skcannon.apogee.reference import REFERENCE_LABELS, load_reference_model
from skcannon.data.build import default_preprocessor
from skcannon.data.simulate import simulate_raw_spectra
from skcannon.evaluation.metrics import label_scorers
from skcannon.model import Cannon, CannonRegressor
from skcannon.pipeline.resources import find_shared

shared = find_shared() / "apogee"
continuum = shared / "continuum" / "cannon_cont_pixels_apogee.npz"
reference = load_reference_model(shared / "reference" / "cannon_apokasc_dr12")
labels = dr12_giant_labels(shared / "labels" / "apogee_dr12_labels.csv", REFERENCE_LABELS)
labels = labels.sample(200, random_state=3).reset_index(drop=True)
rng = np.random.default_rng(3)
X = simulate_raw_spectra(reference, labels, rng.uniform(80, 200, len(labels)), rng,
                         sorted((shared / "dr17" / "stars").rglob("apStar-dr17-*.fits")),
                         continuum)
y = labels[list(REFERENCE_LABELS)].to_numpy()

pipeline = make_pipeline(*default_preprocessor(continuum).named_steps.values(),
                         CannonRegressor(Cannon(REFERENCE_LABELS), n_starts=1))
grid = [  # two small grids rather than every combination: a quick example
    {"cannonregressor__cannon__order": [1, 2], "continuumnormalizer__order": [2, 3],
     "cannonregressor__cannon__n_error_factors": [0]},
    {"cannonregressor__cannon__regularization": [0.0, 100.0],
     "cannonregressor__cannon__n_error_factors": [0, 4]},
]
search = GridSearchCV(pipeline, grid, scoring=label_scorers(REFERENCE_LABELS),
                      refit="robust_scatter_TEFF", cv=KFold(2, shuffle=True, random_state=0))
search.fit(X, y)
for params, score in zip(search.cv_results_["params"],
                         search.cv_results_["mean_test_robust_scatter_TEFF"], strict=True):
    print(f"TEFF robust scatter {-score:6.1f} K  {params}")
print("best:", search.best_params_)

model = search.best_estimator_
path = skcannon.save(model, "tuned_model.h5", overwrite=True)
loaded = skcannon.load(path)
assert np.array_equal(loaded.predict(X[:5]), model.predict(X[:5]))
first = ", ".join(f"{name} {value:.2f}" for name, value in zip(REFERENCE_LABELS,
                                                                loaded.predict(X[:1])[0],
                                                                strict=True))
print(f"saved and reloaded {path} (order {loaded[-1].cannon_.order}); first star: {first}")
