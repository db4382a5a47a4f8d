"""
A neural network next to the Cannon
====================================

Train a small PyTorch network (skorch, so it is a scikit-learn estimator) to predict labels
from spectra, on the same train/test halves as the Cannon, with early stopping on the
validation loss; plot the loss curves and compare both methods on the same stars. Spectra are
simulated from the reference model at real DR12 giant labels.
"""

import numpy as np
from sklearn.model_selection import train_test_split

from skcannon.apogee.label_tables import dr12_giant_labels
from skcannon.apogee.reference import REFERENCE_LABELS, load_reference_model
from skcannon.data.simulate import simulate_spectra
from skcannon.model import Cannon
from skcannon.nn import fit_nn, loss_history
from skcannon.nn.compare import method_table
from skcannon.pipeline.resources import find_shared
from skcannon.plotting import save_figure
from skcannon.plotting.comparison import loss_figure

shared = find_shared() / "apogee"
reference = load_reference_model(shared / "reference" / "cannon_apokasc_dr12")
labels = dr12_giant_labels(shared / "labels" / "apogee_dr12_labels.csv", REFERENCE_LABELS)
labels = labels.sample(600, random_state=2).reset_index(drop=True)
rng = np.random.default_rng(2)
X = simulate_spectra(reference, labels, rng.uniform(50, 250, len(labels)), rng)
y = labels[list(REFERENCE_LABELS)].to_numpy()
train, test = train_test_split(np.arange(len(X)), test_size=0.5, random_state=42)

net = fit_nn("mlp", X[train], y[train], X[test], y[test], seed=0, max_epochs=30)
save_figure(loss_figure({"mlp": loss_history(net)}), "loss_curves.png")
cannon = Cannon(label_names=REFERENCE_LABELS).fit(y[train], X[train])
print(method_table(y[test], net.predict(X[test]), REFERENCE_LABELS, "NN (mlp)"))
print(method_table(y[test], cannon.infer_labels(X[test]).labels, REFERENCE_LABELS, "Cannon"))
