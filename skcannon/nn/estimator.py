"""A neural-network label regressor (PyTorch + skorch): spectra -> labels.

Optional: ``pip install "skcannon[nn]"`` (torch, skorch). Nothing outside :mod:`skcannon.nn`
imports it, so the rest works without torch.

Input: spectra arrays (n_stars, 3, n_pixels) -> two channels per pixel, the normalized flux
(masked pixels replaced by 1, the continuum level) and a mask channel (1 = good), by
:class:`SpectraToChannels`. Labels are standardized (``TransformedTargetRegressor`` with a
``StandardScaler``). Architectures: :mod:`skcannon.nn.networks`.

Training: Adam, mean squared error on standardized labels, early stopping on the validation loss
(skorch's EarlyStopping, best weights restored), explicit seed, deterministic on the CPU.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetRegressor
from skorch.callbacks import EarlyStopping
from skorch.dataset import ValidSplit
from torch import nn

from skcannon.nn.networks import ARCHITECTURES
from skcannon.spectra import FLUX, IVAR, check_spectra, spectra_tags


class SpectraToChannels(TransformerMixin, BaseEstimator):
    """(n_stars, 3, n_pixels) spectra -> float32 (n_stars, 2, n_pixels): the flux standardized
    per pixel with the training stars' mean and standard deviation (masked pixels set to 0, the
    mean), and the good-pixel mask.

    Attributes
    ----------
    n_pixels_ : int
    mean_, scale_ : ndarray, shape (n_pixels,)
    """

    def fit(self, X, y=None):
        X = check_spectra(X)
        self.n_pixels_ = X.shape[2]
        good = (X[:, IVAR] > 0) & np.isfinite(X[:, FLUX])
        flux = np.where(good, X[:, FLUX], 0.0)
        count = np.maximum(good.sum(axis=0), 1)
        mean = flux.sum(axis=0) / count
        variance = (np.where(good, flux - mean, 0.0) ** 2).sum(axis=0) / count
        self.mean_ = np.where(good.any(axis=0), mean, 1.0)
        self.scale_ = np.where(variance > 1e-12, np.sqrt(variance), 1.0)
        return self

    def transform(self, X) -> np.ndarray:
        X = check_spectra(X, self.n_pixels_)
        good = (X[:, IVAR] > 0) & np.isfinite(X[:, FLUX])
        flux = np.where(good, (X[:, FLUX] - self.mean_) / self.scale_, 0.0)
        return np.stack([np.clip(flux, -10, 10), good], axis=1).astype(np.float32)

    def __sklearn_tags__(self):
        return spectra_tags(super().__sklearn_tags__())


def default_device() -> str:
    """"cuda" when a GPU is present, else "cpu"."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def make_nn_regressor(kind: str, n_pixels: int, n_labels: int, X_valid=None, y_valid=None,
                      max_epochs: int = 150, lr: float = 1e-3, batch_size: int = 64,
                      patience: int = 15, weight_decay: float = 1e-5, seed: int = 0,
                      device: str | None = None) -> TransformedTargetRegressor:
    """A scikit-learn estimator (spectra -> labels): channels -> skorch NeuralNetRegressor,
    with standardized labels.

    ``X_valid, y_valid`` (spectra and physical labels) make the validation set explicit;
    without them skorch holds out 20 % of the training stars. Early stopping watches the
    validation loss and restores the best weights.
    """
    if kind not in ARCHITECTURES:
        raise ValueError(f"kind must be one of {sorted(ARCHITECTURES)}, got {kind!r}")
    train_split = ValidSplit(0.2, random_state=seed)
    if X_valid is not None:
        train_split = _PredefinedValid(X_valid, y_valid)
    net = SeededNet(
        ARCHITECTURES[kind], module__n_pixels=n_pixels, module__n_labels=n_labels,
        criterion=nn.MSELoss, optimizer=torch.optim.Adam, optimizer__lr=lr,
        optimizer__weight_decay=weight_decay, batch_size=batch_size, max_epochs=max_epochs,
        train_split=train_split, iterator_train__shuffle=True,
        callbacks=[EarlyStopping(patience=patience, load_best=True)],
        device=device or default_device(), verbose=0, seed=seed)
    return TransformedTargetRegressor(
        regressor=Pipeline([("channels", SpectraToChannels()), ("net", net)]),
        transformer=StandardScaler())


class SeededNet(NeuralNetRegressor):
    """NeuralNetRegressor that seeds torch (weights, dropout, shuffling) at initialization and
    takes float32 targets."""

    def __init__(self, *args, seed: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.seed = seed

    def initialize(self):
        torch.manual_seed(self.seed)
        return super().initialize()

    def fit(self, X, y=None, **fit_params):
        return super().fit(X, np.asarray(y, dtype=np.float32), **fit_params)


class _PredefinedValid:
    """skorch train_split using a fixed validation set given in raw form (spectra, labels),
    transformed like the training data (``channels`` and ``label_scaler`` are fitted on the
    training stars and set by :func:`fit_nn`)."""

    def __init__(self, X_valid, y_valid):
        self.X_valid = X_valid
        self.y_valid = y_valid
        self.channels = None
        self.label_scaler = None

    def __call__(self, dataset, y=None, **kwargs):
        from skorch.dataset import Dataset

        X = self.channels.transform(self.X_valid)
        y_valid = self.label_scaler.transform(self.y_valid)
        return dataset, Dataset(X, np.asarray(y_valid, dtype=np.float32))


def fit_nn(kind: str, X_train, y_train, X_valid, y_valid, seed: int = 0, **options):
    """Train a regressor with an explicit validation set (physical labels in, out)."""
    model = make_nn_regressor(kind, X_train.shape[2], y_train.shape[1], X_valid, y_valid,
                              seed=seed, **options)
    split = model.regressor.named_steps["net"].train_split
    split.channels = SpectraToChannels().fit(X_train)      # what the pipeline fits, too
    split.label_scaler = StandardScaler().fit(y_train)     # the target transformer's twin
    model.fit(X_train, y_train)
    return model


def loss_history(model) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation loss per epoch of a fitted regressor."""
    net = model.regressor_.named_steps["net"]
    return (np.array(net.history[:, "train_loss"]), np.array(net.history[:, "valid_loss"]))
