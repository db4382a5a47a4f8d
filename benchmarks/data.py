"""Benchmark inputs: spectra simulated from the published reference model at real labels."""

from __future__ import annotations

import numpy as np

from benchmarks.common import SHARED

FIVE_LABELS = ("TEFF", "LOGG", "FE_H", "MG_FE", "SI_FE")


def simulated_giants(n_stars: int, seed: int = 0):
    """``n_stars`` spectra (7214 px) drawn from the reference 4-label model at real DR12 giant
    labels, SNR 50-250, with real apStar error shapes and bad-pixel masks.

    Returns (labels DataFrame with both the 4 reference labels and the 5 mission labels, X,
    reference model).
    """
    from skcannon.apogee.label_tables import dr12_giant_labels
    from skcannon.apogee.reference import REFERENCE_LABELS, load_reference_model
    from skcannon.data.simulate import noise_templates_from_apstar, simulate_spectra

    apogee = SHARED / "apogee"
    model = load_reference_model(apogee / "reference" / "cannon_apokasc_dr12")
    table = dr12_giant_labels(apogee / "labels" / "apogee_dr12_labels.csv",
                              tuple(dict.fromkeys(REFERENCE_LABELS + FIVE_LABELS)))
    table = table.sample(n_stars, random_state=seed).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    templates = noise_templates_from_apstar(
        sorted((apogee / "dr17" / "stars").rglob("apStar-dr17-*.fits")))
    X = simulate_spectra(model, table, rng.uniform(50, 250, n_stars), rng, templates)
    return table, X, model
