"""Stars whose best labels lie beyond the training range end on a bound, converged: the
Levenberg-Marquardt step holds the blocked label and solves for the others (a full step then
clipped failed to lower chi^2 where labels are correlated and ran to ``max_iter``)."""

from __future__ import annotations

import numpy as np

from skcannon.data.simulate import simulate_spectra
from skcannon.inference.fitting import fit_labels


def test_stars_beyond_the_hot_edge_converge_on_the_bound(reference_model):
    rng = np.random.default_rng(5)
    upper_teff = reference_model.state_.label_bounds(0.1)[1][0]
    truth = np.column_stack([np.full(12, upper_teff + 150.0), rng.uniform(3.0, 3.8, 12),
                             rng.uniform(-0.8, 0.2, 12), rng.uniform(0.0, 0.3, 12)])
    X = simulate_spectra(reference_model, truth, np.full(12, 150.0), rng)
    fit = fit_labels(reference_model.state_, X[:, 0], X[:, 1])
    on_bound = fit.on_bound
    assert on_bound.sum() >= 6                              # most end on the Teff bound ...
    assert np.allclose(fit.labels[on_bound, 0], upper_teff)
    assert fit.converged[on_bound].all()                    # ... converged there (2 of 8 before)
