"""Training on uncertain and missing labels, against the plain Cannon (``training_*`` keys).

Data source: spectra from an independent generator, the BinSpec per-pixel network of Kurucz FGK
dwarfs (``../shared/apogee/emulators``; :class:`skcannon.data.emulator.SpectrumEmulator`), on the
7214-pixel APOGEE grid, S/N 100 Gaussian noise, labels drawn uniformly in the inner 80 % of the
emulator's range (v_macro fixed at its mid value); simulated, not real spectra. The Cannon
(quadratic, 4 labels, 10 error factors) does not describe these spectra exactly: a model trained
on the *true* labels already has held-out slopes below 1, reported beside the others.

1. Label errors: the training labels are perturbed by known Gaussian errors (``LABEL_ERRORS``);
   models trained on them plainly and with ``label_err`` (errors-in-variables) are compared on
   held-out stars: slope of fitted vs true labels, scatter overall, at the edges (the outer
   ``EDGE_FRACTION`` of each label's range at both ends) and in the middle.
2. Missing labels: 30 % of the training stars lack one label (chosen at random);
   ``missing_labels="infer"`` and ``"drop"`` against the complete set.
"""

from __future__ import annotations

import numpy as np

NAMES = ("TEFF", "LOGG", "FE_H", "ALPHA_M")
#: Catalog errors planted on the training labels (K, dex, dex, dex).
LABEL_ERRORS = np.array([100.0, 0.1, 0.05, 0.04])
SNR = 100.0
EDGE_FRACTION = 0.15
MISSING_FRACTION = 0.3
SOURCE = ("simulated: BinSpec FGK-dwarf emulator spectra (../shared/apogee/emulators), 7214 "
          "pixels, S/N 100, labels uniform in the inner 80 % of the emulator range; not real "
          "spectra")


def emulated(emulator, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """True labels (n, 4) and noisy spectra (n, 3, n_pixels) from the emulator."""
    rng = np.random.default_rng(seed)
    labels = emulator.sample_labels(n, seed)
    labels[:, 4] = 0.5 * (emulator.label_min[4] + emulator.label_max[4])
    flux = emulator.flux(labels)
    flux += rng.normal(size=flux.shape) / SNR
    X = np.stack([flux, np.full_like(flux, SNR ** 2), np.zeros_like(flux)], axis=1)
    return labels[:, :4], X


def accuracy(model, truth: np.ndarray, X: np.ndarray, prefix: str) -> dict:
    """Held-out slope, scatter, edge and middle scatter per label, as results keys."""
    fitted = model.infer_labels(X).labels
    out = {}
    for i, name in enumerate(NAMES):
        low, high = np.quantile(truth[:, i], [EDGE_FRACTION, 1 - EDGE_FRACTION])
        edge = (truth[:, i] < low) | (truth[:, i] > high)
        residual = fitted[:, i] - truth[:, i]
        out[f"{prefix}_slope_{name}"] = round(float(np.polyfit(truth[:, i], fitted[:, i],
                                                               1)[0]), 4)
        out[f"{prefix}_scatter_{name}"] = round(float(np.std(residual)), 5)
        out[f"{prefix}_edge_scatter_{name}"] = round(float(np.std(residual[edge])), 5)
        out[f"{prefix}_middle_scatter_{name}"] = round(float(np.std(residual[~edge])), 5)
    return out


def run(n_train: int = 600, n_test: int = 400) -> dict:
    from skcannon.data.emulator import SpectrumEmulator
    from skcannon.model import Cannon
    from skcannon.pipeline.resources import SharedData

    emulator = SpectrumEmulator.from_npz(
        SharedData().root / "apogee" / "emulators" / "binspec_dwarf_nn_normalized.npz")
    truth, X = emulated(emulator, n_train, seed=1)
    test, X_test = emulated(emulator, n_test, seed=2)
    rng = np.random.default_rng(3)
    catalog = truth + rng.normal(size=truth.shape) * LABEL_ERRORS
    figures = {"training_data_source": SOURCE, "training_n_train": n_train,
               "training_n_test": n_test,
               "training_label_errors": ", ".join(f"{n} {e:g}" for n, e in
                                                  zip(NAMES, LABEL_ERRORS, strict=True))}
    figures.update(accuracy(Cannon(NAMES).fit(truth, X), test, X_test, "training_true"))
    figures.update(accuracy(Cannon(NAMES).fit(catalog, X), test, X_test, "training_plain"))
    eiv = Cannon(NAMES).fit(catalog, X, label_err=LABEL_ERRORS)
    figures.update(accuracy(eiv, test, X_test, "training_eiv"))
    figures["training_eiv_iterations"] = int(eiv.label_iterations_)
    for i, name in enumerate(NAMES):
        figures[f"training_eiv_posterior_scatter_{name}"] = round(
            float(np.std(eiv.training_labels_[:, i] - truth[:, i])), 5)
        figures[f"training_catalog_scatter_{name}"] = round(
            float(np.std(catalog[:, i] - truth[:, i])), 5)
    figures.update(missing(truth, X, test, X_test))
    return figures


def missing(truth: np.ndarray, X: np.ndarray, test: np.ndarray, X_test: np.ndarray) -> dict:
    """Held-out scatter with ``MISSING_FRACTION`` of the stars lacking one (exact) label:
    complete set, ``missing_labels="infer"``, ``"drop"``."""
    from skcannon.model import Cannon

    rng = np.random.default_rng(4)
    labels = truth.copy()
    lacking = rng.random(len(labels)) < MISSING_FRACTION
    labels[lacking, rng.integers(0, len(NAMES), lacking.sum())] = np.nan
    figures = {"training_missing_fraction": round(float(lacking.mean()), 3)}
    for option in ("infer", "drop"):
        model = Cannon(NAMES, missing_labels=option).fit(labels, X)
        figures.update({key.replace("training_", "training_missing_"): value for key, value
                        in accuracy(model, test, X_test, f"training_{option}").items()
                        if "_scatter_" in key and "edge" not in key and "middle" not in key})
    return figures
