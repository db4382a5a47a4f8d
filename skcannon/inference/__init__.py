"""Label inference on a model's learned state (values, not estimators): batched multi-start
fitting and the TRF reference path, registered as label-fitting methods; the numpy
log-posterior of one spectrum, sampled by registered back ends (nutpie, PyMC, emcee)."""

from skcannon.inference.fitting import LabelFit, fit_labels
from skcannon.inference.methods import FIT_METHODS, register_fit_method
from skcannon.inference.posterior import LogPosterior
from skcannon.inference.quadratic import sufficient_statistics
from skcannon.inference.reference import fit_labels_trf
from skcannon.inference.samplers import SAMPLERS, register_sampler

__all__ = ["FIT_METHODS", "SAMPLERS", "LabelFit", "LogPosterior", "fit_labels", "fit_labels_trf",
           "register_fit_method", "register_sampler", "sufficient_statistics"]
