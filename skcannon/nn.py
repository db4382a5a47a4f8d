"""A neural-network label regressor (PyTorch + skorch): spectra -> labels.

Optional: ``pip install "skcannon[nn]"`` (torch, skorch). Nothing else in skcannon imports this
module, so the rest works without torch.

Input: spectra arrays (n_stars, 3, n_pixels) -> two channels per pixel, the normalized flux
(masked pixels replaced by 1, the continuum level) and a mask channel (1 = good), by
:class:`SpectraToChannels`. Labels are standardized (``TransformedTargetRegressor`` with a
``StandardScaler``). Architectures:

* ``mlp``: flatten -> Linear(2 n_pixels, 256) -> GELU -> Dropout -> Linear(256, 128) -> GELU ->
  Linear(128, n_labels);
* ``cnn``: Conv1d(2, 8, 9) -> GELU -> MaxPool(4) -> Conv1d(8, 16, 9) -> GELU -> MaxPool(4) ->
  flatten -> Linear(., 128) -> GELU -> Dropout -> Linear(128, n_labels).

Training: Adam, mean squared error on standardized labels, early stopping on the validation loss
(skorch's EarlyStopping, best weights restored), explicit seed, deterministic on the CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

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

from skcannon.spectra import FLUX, IVAR, check_spectra

NN_FORMAT_VERSION = 1


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
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags


class SpectrumMLP(nn.Module):
    """Multi-layer perceptron on the flattened two-channel spectrum."""

    def __init__(self, n_pixels: int, n_labels: int, hidden: int = 256, dropout: float = 0.1):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * n_pixels, hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden // 2), nn.GELU(), nn.Linear(hidden // 2, n_labels))

    def forward(self, X):
        return self.layers(X)


class SpectrumCNN(nn.Module):
    """A small 1-D convolutional network on the two-channel spectrum."""

    def __init__(self, n_pixels: int, n_labels: int, channels: int = 8, kernel: int = 9,
                 hidden: int = 128, dropout: float = 0.1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(2, channels, kernel, padding=kernel // 2), nn.GELU(), nn.MaxPool1d(4),
            nn.Conv1d(channels, 2 * channels, kernel, padding=kernel // 2), nn.GELU(),
            nn.MaxPool1d(4), nn.Flatten())
        size = 2 * channels * ((n_pixels // 4) // 4)
        self.head = nn.Sequential(nn.Linear(size, hidden), nn.GELU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, n_labels))

    def forward(self, X):
        return self.head(self.features(X))


ARCHITECTURES = {"mlp": SpectrumMLP, "cnn": SpectrumCNN}


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


def save_nn(model, directory: str | Path, kind: str, label_names, options: dict | None = None
            ) -> Path:
    """Weights (a torch state dict, loadable with weights_only=True) and a JSON header with the
    architecture and the label standardization."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    net = model.regressor_.named_steps["net"]
    torch.save(net.module_.state_dict(), directory / f"{kind}_weights.pt")
    scaler = model.transformer_
    channels = model.regressor_.named_steps["channels"]
    np.savez(directory / f"{kind}_input_scaling.npz", mean=channels.mean_, scale=channels.scale_)
    header = {"format": "skcannon-nn", "format_version": NN_FORMAT_VERSION, "kind": kind,
              "n_pixels": int(channels.n_pixels_),
              "label_names": list(label_names), "label_mean": scaler.mean_.tolist(),
              "label_scale": scaler.scale_.tolist(), "options": options or {}}
    (directory / f"{kind}.json").write_text(json.dumps(header, indent=2))
    return directory


class LoadedNN:
    """A saved network, ready to predict labels (no skorch needed)."""

    def __init__(self, directory: str | Path, kind: str) -> None:
        from skcannon.errors import BadFileError

        directory = Path(directory)
        header_path = directory / f"{kind}.json"
        try:
            self.header = json.loads(header_path.read_text())
        except (OSError, ValueError) as exc:
            raise BadFileError(header_path, f"cannot read the network header ({exc})") from exc
        if self.header.get("format_version") != NN_FORMAT_VERSION:
            raise BadFileError(header_path, "unknown network format version")
        self.label_names = self.header["label_names"]
        self.module = ARCHITECTURES[kind](self.header["n_pixels"], len(self.label_names))
        state = torch.load(directory / f"{kind}_weights.pt", weights_only=True,
                           map_location="cpu")
        self.module.load_state_dict(state)
        self.module.eval()
        self.channels = SpectraToChannels()
        self.channels.n_pixels_ = self.header["n_pixels"]
        scaling = np.load(directory / f"{kind}_input_scaling.npz", allow_pickle=False)
        self.channels.mean_, self.channels.scale_ = scaling["mean"], scaling["scale"]

    def predict(self, X) -> np.ndarray:
        """Labels (n_stars, n_labels) in physical units."""
        with torch.no_grad():
            out = self.module(torch.from_numpy(self.channels.transform(X))).numpy()
        return out * np.array(self.header["label_scale"]) + np.array(self.header["label_mean"])
