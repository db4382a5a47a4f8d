"""Network files: weights as a torch state dict (loadable with ``weights_only=True``), the input
scaling as npz and a JSON header; no pickle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from skcannon.errors import BadFileError
from skcannon.integrity import atomic_write, check_format, content_digest, file_digest
from skcannon.nn.estimator import SpectraToChannels
from skcannon.nn.networks import ARCHITECTURES

NN_FORMAT = "skcannon-nn"
NN_FORMAT_VERSION = 2


def save_nn(model, directory: str | Path, kind: str, label_names, *,
            options: dict | None = None) -> Path:
    """Weights (a torch state dict, loadable with weights_only=True), the input scaling (npz)
    and a JSON header with the architecture and the label standardization, each written
    atomically; the header last, so a directory with a header holds a complete network. The
    header records the SHA-256 of the other two files and a checksum of its own content.

    Parameters
    ----------
    model : TransformedTargetRegressor
        A fitted network (:func:`skcannon.nn.fit_nn`).
    directory : str or path-like
        Where the files go (``<kind>_weights.pt``, ``<kind>_input_scaling.npz``,
        ``<kind>.json``); existing files of the same ``kind`` are replaced.
    kind : {"mlp", "cnn"}
        The model's architecture.
    label_names : sequence of str of length n_labels
    options : dict, default=None
        Training options recorded in the header.

    Returns
    -------
    Path
        ``directory``.
    """
    directory = Path(directory)
    net = model.regressor_.named_steps["net"]
    scaler = model.transformer_
    channels = model.regressor_.named_steps["channels"]
    with atomic_write(directory / f"{kind}_weights.pt", overwrite=True) as tmp:
        torch.save(net.module_.state_dict(), tmp)
    with atomic_write(directory / f"{kind}_input_scaling.npz", overwrite=True) as tmp, \
            open(tmp, "wb") as handle:
        np.savez(handle, mean=channels.mean_, scale=channels.scale_)
    header = {"format": NN_FORMAT, "format_version": NN_FORMAT_VERSION, "kind": kind,
              "n_pixels": int(channels.n_pixels_),
              "label_names": list(label_names), "label_mean": scaler.mean_.tolist(),
              "label_scale": scaler.scale_.tolist(), "options": options or {},
              "files": {name: file_digest(directory / name)
                        for name in (f"{kind}_weights.pt", f"{kind}_input_scaling.npz")}}
    header["checksum"] = content_digest(header, {})
    with atomic_write(directory / f"{kind}.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(header, indent=2))
    return directory


class LoadedNN:
    """A saved network, ready to predict labels (no skorch needed).

    Every file is checked against the header's digests before the weights are loaded.

    Parameters
    ----------
    directory : str or path-like
        The directory :func:`save_nn` wrote.
    kind : {"mlp", "cnn"}
        Which network of the directory.

    Attributes
    ----------
    header : dict
        The JSON header.
    label_names : list of str
    module : torch.nn.Module
        The network, in evaluation mode, on the CPU.
    channels : SpectraToChannels
        The input transform, with the saved scaling.

    Raises
    ------
    BadFileError
        Naming the file: unreadable, foreign or another version, altered header, or a weights
        or scaling file missing or not the one the header was written with.
    """

    def __init__(self, directory: str | Path, kind: str) -> None:
        directory = Path(directory)
        header_path = directory / f"{kind}.json"
        try:
            self.header = json.loads(header_path.read_text())
        except (OSError, ValueError) as exc:
            raise BadFileError(header_path, f"cannot read the network header ({exc})") from exc
        if not isinstance(self.header, dict):
            raise BadFileError(header_path, "not a network header (not a JSON object)")
        check_format(header_path, self.header, expected_format=NN_FORMAT,
                     expected_version=NN_FORMAT_VERSION, what="network header")
        if content_digest(self.header, {}) != self.header.get("checksum"):
            raise BadFileError(header_path, "checksum mismatch: the header was modified or "
                                            "damaged")
        for name, digest in self.header["files"].items():
            if not (directory / name).is_file() or file_digest(directory / name) != digest:
                raise BadFileError(directory / name, "missing, or not the file its header "
                                                     f"{header_path.name} was written with")
        self.label_names = self.header["label_names"]
        self.module = ARCHITECTURES[kind](self.header["n_pixels"], len(self.label_names))
        state = torch.load(directory / f"{kind}_weights.pt", weights_only=True,
                           map_location="cpu")
        self.module.load_state_dict(state)
        self.module.eval()
        self.channels = SpectraToChannels()
        self.channels.n_pixels_ = self.header["n_pixels"]
        with np.load(directory / f"{kind}_input_scaling.npz", allow_pickle=False) as scaling:
            self.channels.mean_, self.channels.scale_ = scaling["mean"], scaling["scale"]

    def predict(self, X) -> np.ndarray:
        """Labels in physical units.

        Parameters
        ----------
        X : array_like of shape (n_stars, 3, n_pixels)
            Spectra on the network's grid.

        Returns
        -------
        ndarray of shape (n_stars, n_labels)
        """
        with torch.no_grad():
            out = self.module(torch.from_numpy(self.channels.transform(X))).numpy()
        return out * np.array(self.header["label_scale"]) + np.array(self.header["label_mean"])
