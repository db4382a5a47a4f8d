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
from skorch.callbacks import Callback, EarlyStopping
from skorch.dataset import ValidSplit
from torch import nn

from skcannon.inference.threads import torch_threads
from skcannon.nn.networks import ARCHITECTURES
from skcannon.spectra import FLUX, IVAR, check_spectra, spectra_tags


class SpectraToChannels(TransformerMixin, BaseEstimator):
    """(n_stars, 3, n_pixels) spectra -> float32 (n_stars, 2, n_pixels): the flux standardized
    per pixel with the training stars' mean and standard deviation (masked pixels set to 0, the
    mean; clipped to +-10), and the good-pixel mask (1 where the inverse variance is positive
    and the flux finite). Takes no parameters.

    Attributes
    ----------
    n_pixels_ : int
        Pixels of the training spectra.
    mean_ : ndarray of shape (n_pixels,)
        Mean flux per pixel over the good training pixels (1 where no star is good).
    scale_ : ndarray of shape (n_pixels,)
        Standard deviation per pixel over the good training pixels (1 where it is ~0).
    """

    def fit(self, X, y=None):
        """Learn the per-pixel mean and standard deviation of the good training pixels.

        Parameters
        ----------
        X : array_like of shape (n_stars, 3, n_pixels)
            Spectra: flux, inverse variance, bitmask.
        y : None
            Ignored.

        Returns
        -------
        SpectraToChannels
            The fitted transformer (self).
        """
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
        """The network's two input channels.

        Parameters
        ----------
        X : array_like of shape (n_stars, 3, n_pixels)
            Spectra with the training spectra's number of pixels.

        Returns
        -------
        ndarray of float32, shape (n_stars, 2, n_pixels)
            Channel 0: standardized flux (0 where masked); channel 1: the good-pixel mask.
        """
        X = check_spectra(X, self.n_pixels_)
        good = (X[:, IVAR] > 0) & np.isfinite(X[:, FLUX])
        flux = np.where(good, (X[:, FLUX] - self.mean_) / self.scale_, 0.0)
        return np.stack([np.clip(flux, -10, 10), good], axis=1).astype(np.float32)

    def __sklearn_tags__(self):
        return spectra_tags(super().__sklearn_tags__())


def default_device() -> str:
    """The torch device networks train on by default.

    Returns
    -------
    str
        ``"cuda"`` when a GPU is present, else ``"cpu"``.
    """
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

    Parameters
    ----------
    kind : {"mlp", "cnn"}
        Architecture (a key of :data:`skcannon.nn.networks.ARCHITECTURES`).
    n_pixels, n_labels : int
        Pixels per spectrum; labels to predict.
    X_valid : array_like of shape (n_valid, 3, n_pixels), default=None
        Validation spectra (needs :func:`fit_nn` to fit its transforms).
    y_valid : array_like of shape (n_valid, n_labels), default=None
        Validation labels, physical units.
    max_epochs : int, default=150
    lr : float, default=1e-3
        Adam learning rate.
    batch_size : int, default=64
    patience : int, default=15
        Epochs without a better validation loss before training stops.
    weight_decay : float, default=1e-5
        Adam weight decay.
    seed : int, default=0
        Seeds torch and the 20 % validation split.
    device : str, default=None
        Torch device; None: :func:`default_device`.

    Returns
    -------
    TransformedTargetRegressor
        Unfitted; its regressor is the Pipeline ``channels`` (:class:`SpectraToChannels`)
        -> ``net`` (:class:`SeededNet`), its transformer a ``StandardScaler``.

    Raises
    ------
    ValueError
        ``kind`` is not a known architecture.
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


class EpochProgress(Callback):
    """skorch callback: one line per epoch on stderr (:func:`skcannon.inference.progress.
    progress_line`) with the epoch, the most epochs and the training and validation losses."""

    def on_epoch_end(self, net, **kwargs) -> None:
        """Write the finished epoch's line.

        Parameters
        ----------
        net : NeuralNet
            The network being trained (its ``history`` holds the losses).
        **kwargs
            Unused (skorch passes the datasets).
        """
        from skcannon.inference.progress import progress_line

        row = net.history[-1]
        losses = {k: row[k] for k in ("train_loss", "valid_loss") if k in row}
        progress_line("nn train: epoch", row["epoch"], net.max_epochs, **losses)


class SeededNet(NeuralNetRegressor):
    """NeuralNetRegressor that seeds torch (weights, dropout, shuffling) at initialization and
    takes float32 targets.

    Parameters
    ----------
    *args, **kwargs
        Passed on to ``skorch.NeuralNetRegressor`` (the module first).
    seed : int, default=0
        ``torch.manual_seed`` before every initialization.
    """

    def __init__(self, *args, seed: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.seed = seed

    def initialize(self):
        """Seed torch with :attr:`seed`, then initialize as skorch does.

        Returns
        -------
        SeededNet
            self.
        """
        torch.manual_seed(self.seed)
        return super().initialize()

    def fit(self, X, y=None, **fit_params):
        """Train as skorch does, with the targets as float32.

        Parameters
        ----------
        X : ndarray of float32, shape (n_stars, 2, n_pixels)
            Input channels (:class:`SpectraToChannels`).
        y : array_like of shape (n_stars, n_labels)
            Standardized labels.
        **fit_params
            Passed on to ``NeuralNetRegressor.fit``.

        Returns
        -------
        SeededNet
            self.
        """
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


def fit_nn(kind: str, X_train, y_train, X_valid, y_valid, seed: int = 0,
           progress: bool = False, **options):
    """Train a regressor with an explicit validation set (physical labels in, out).

    Parameters
    ----------
    kind : {"mlp", "cnn"}
        Architecture.
    X_train : ndarray of shape (n_stars, 3, n_pixels)
        Training spectra.
    y_train : ndarray of shape (n_stars, n_labels)
        Training labels, physical units.
    X_valid : ndarray of shape (n_valid, 3, n_pixels)
        Validation spectra (for early stopping).
    y_valid : ndarray of shape (n_valid, n_labels)
        Validation labels, physical units.
    seed : int, default=0
    progress : bool, default=False
        One line per epoch with its losses on stderr (:class:`EpochProgress`).
    **options
        Further keyword arguments of :func:`make_nn_regressor` (``max_epochs``, ``lr`` ...).

    Returns
    -------
    TransformedTargetRegressor
        The fitted regressor (:func:`make_nn_regressor`); ``predict`` gives physical labels.
        Trained with torch's threads set by the package's thread policy
        (:func:`skcannon.inference.threads.torch_threads`).
    """
    model = make_nn_regressor(kind, X_train.shape[2], y_train.shape[1], X_valid, y_valid,
                              seed=seed, **options)
    if progress:
        model.regressor.named_steps["net"].callbacks.append(EpochProgress())
    split = model.regressor.named_steps["net"].train_split
    split.channels = SpectraToChannels().fit(X_train)      # what the pipeline fits, too
    split.label_scaler = StandardScaler().fit(y_train)     # the target transformer's twin
    with torch_threads():                                  # the package's thread policy
        model.fit(X_train, y_train)
    return model


def loss_history(model) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation loss per epoch of a fitted regressor.

    Parameters
    ----------
    model : TransformedTargetRegressor
        Fitted by :func:`fit_nn` (or made by :func:`make_nn_regressor` and fitted).

    Returns
    -------
    train_loss, valid_loss : ndarray of shape (n_epochs,)
        Mean squared error of the standardized labels.
    """
    net = model.regressor_.named_steps["net"]
    return (np.array(net.history[:, "train_loss"]), np.array(net.history[:, "valid_loss"]))
