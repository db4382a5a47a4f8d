"""The Cannon: vectorizer, label scaling, batched training, the estimators, model files.

Survey-free: nothing here knows about APOGEE (the published APOGEE model's importer is
:func:`skcannon.apogee.reference.load_reference_model`).
"""

from skcannon.model.cannon import Cannon
from skcannon.model.continuum_pixels import ContinuumPixels, find_continuum_pixels
from skcannon.model.regressor import CannonRegressor
from skcannon.model.scaling import LabelScaling
from skcannon.model.training import DEFAULT_SCATTER_GRID, train_pixels
from skcannon.model.vectorizer import PolynomialVectorizer

__all__ = ["DEFAULT_SCATTER_GRID", "Cannon", "CannonRegressor", "ContinuumPixels",
           "LabelScaling", "PolynomialVectorizer", "find_continuum_pixels", "train_pixels"]
