"""
Posterior of the mystery spectrum with PyMC
===========================================

Preprocess the "mystery" apStar spectrum exactly like training data, fit it with the published
reference model, sample the posterior of its labels with NUTS, and compare the posterior width
with the optimizer's formal uncertainty.
"""

import warnings

from skcannon.apogee import read_apstar
from skcannon.apogee.reference import load_reference_model
from skcannon.data.build import default_preprocessor
from skcannon.inference.mcmc import CannonPosterior, posterior_corner_figure
from skcannon.pipeline.resources import find_shared
from skcannon.plotting import save_figure
from skcannon.spectra import stack_spectra

shared = find_shared() / "apogee"
model = load_reference_model(shared / "reference" / "cannon_apokasc_dr12")
star = read_apstar(shared / "mystery" / "mystery_spec_wiped.fits")
X = default_preprocessor(shared / "continuum" / "cannon_cont_pixels_apogee.npz").fit_transform(
    stack_spectra(star.flux, star.ivar, pixmask=star.pixmask))
fit = model.infer_labels(X)
# the likelihood as the per-star quadratic form of chi^2 (what `skcannon posterior` uses): the
# same log-density as the pixel form up to a constant, and faster to compile and sample
sampler = CannonPosterior(model, prior="uniform", likelihood="quadratic")
print("priors:", sampler.priors)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    posterior = sampler.sample(X[0, 0], X[0, 1], draws=500, tune=500, chains=2, seed=1,
                               initial=fit.labels[0])
print(posterior.summary)
print("posterior sd / optimizer sigma:", (posterior.summary["sd"].to_numpy()
                                          / fit.uncertainties[0]).round(3))
save_figure(posterior_corner_figure(posterior, model.label_names, fit.labels[0]),
            "posterior.png")
