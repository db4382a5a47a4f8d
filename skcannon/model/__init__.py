"""The Cannon: vectorizer, label scaling, batched training, the estimators, model files."""

from skcannon.model.cannon import Cannon
from skcannon.model.reference import load_reference_model, load_reference_training_labels
from skcannon.model.regressor import CannonRegressor
from skcannon.model.scaling import LabelScaling
from skcannon.model.training import DEFAULT_SCATTER_GRID, train_pixels
from skcannon.model.vectorizer import PolynomialVectorizer

__all__ = ["DEFAULT_SCATTER_GRID", "Cannon", "CannonRegressor", "LabelScaling",
           "PolynomialVectorizer", "load_reference_model", "load_reference_training_labels",
           "train_pixels"]
