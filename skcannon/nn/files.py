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
    if kind not in ARCHITECTURES or not isinstance(net.module_, ARCHITECTURES[kind]):
        raise ValueError(f"kind {kind!r} is not the model's network "
                         f"({type(net.module_).__name__})")
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
        Naming the file: unreadable, foreign or another version, altered header, a header of
        another kind or covering other files than this kind's, a weights or scaling file
        missing or not the one the header was written with, or content that makes no sense
        (label scales not positive, non-finite values, weights of another shape).
    """

    def __init__(self, directory: str | Path, kind: str) -> None:
        directory = Path(directory)
        if kind not in ARCHITECTURES:
            raise ValueError(f"kind must be one of {', '.join(ARCHITECTURES)}; got {kind!r}")
        self.header = _read_header(directory / f"{kind}.json", kind)
        self.label_names = self.header["label_names"]
        weights = directory / f"{kind}_weights.pt"
        self.module = ARCHITECTURES[kind](self.header["n_pixels"], len(self.label_names))
        try:
            state = torch.load(weights, weights_only=True, map_location="cpu")
            self.module.load_state_dict(state)
        except Exception as exc:       # torch raises RuntimeError, pickle errors, KeyError...
            raise BadFileError(weights, f"not the weights of a {kind} network of "
                                        f"{self.header['n_pixels']} pixels and "
                                        f"{len(self.label_names)} labels ({exc})") from exc
        if not all(torch.isfinite(value).all() for value in state.values()
                   if torch.is_tensor(value) and value.is_floating_point()):
            raise BadFileError(weights, "holds non-finite weights")
        self.module.eval()
        self.channels = SpectraToChannels()
        self.channels.n_pixels_ = self.header["n_pixels"]
        self.channels.mean_, self.channels.scale_ = _read_scaling(
            directory / f"{kind}_input_scaling.npz", self.header["n_pixels"])

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


def _read_header(path: Path, kind: str) -> dict:
    """The checked JSON header of a network of ``kind``: format, checksum, the kind and the
    files it covers (exactly this kind's weights and input scaling, each with its digest),
    and a label standardization that makes sense (BadFileError naming the file)."""
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadFileError(path, f"cannot read the network header ({exc})") from exc
    if not isinstance(header, dict):
        raise BadFileError(path, "not a network header (not a JSON object)")
    check_format(path, header, expected_format=NN_FORMAT, expected_version=NN_FORMAT_VERSION,
                 what="network header")
    if content_digest(header, {}) != header.get("checksum"):
        raise BadFileError(path, "checksum mismatch: the header was modified or damaged")
    if header.get("kind") != kind:
        raise BadFileError(path, f"is the header of a {header.get('kind')!r} network; a "
                                 f"{kind!r} one was asked for")
    covered = {f"{kind}_weights.pt", f"{kind}_input_scaling.npz"}
    files = header.get("files")
    if not isinstance(files, dict) or set(files) != covered:
        raise BadFileError(path, f"covers the files {sorted(files or {})}; a {kind} header "
                                 f"covers {sorted(covered)}")
    for name, digest in files.items():
        if not (path.parent / name).is_file() or file_digest(path.parent / name) != digest:
            raise BadFileError(path.parent / name, "missing, or not the file its header "
                                                   f"{path.name} was written with")
    _check_standardization(path, header)
    return header


def _check_standardization(path: Path, header: dict) -> None:
    """The header's pixel count and label standardization make sense (BadFileError)."""
    names, n_pixels = header.get("label_names"), header.get("n_pixels")
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)
            and len(set(names)) == len(names)):
        raise BadFileError(path, f"label_names {names!r} are not distinct strings")
    if not isinstance(n_pixels, int) or isinstance(n_pixels, bool) or n_pixels < 1:
        raise BadFileError(path, f"n_pixels {n_pixels!r} is not a positive integer")
    try:
        mean = np.asarray(header.get("label_mean"), dtype=float)
        scale = np.asarray(header.get("label_scale"), dtype=float)
    except (TypeError, ValueError) as exc:
        raise BadFileError(path, f"the label standardization is not numbers ({exc})") from exc
    if mean.shape != (len(names),) or scale.shape != (len(names),):
        raise BadFileError(path, f"label_mean {mean.shape} and label_scale {scale.shape} do "
                                 f"not have one value per label ({len(names)})")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
        raise BadFileError(path, "label_mean must be finite and label_scale finite and > 0")


def _read_scaling(path: Path, n_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """The input scaling (mean, scale), each (n_pixels,) finite, scale > 0 (BadFileError)."""
    try:
        with np.load(path, allow_pickle=False) as scaling:
            mean, scale = scaling["mean"], scaling["scale"]
    except Exception as exc:
        raise BadFileError(path, f"cannot be read as the input scaling ({exc})") from exc
    if mean.shape != (n_pixels,) or scale.shape != (n_pixels,) \
            or mean.dtype.kind != "f" or scale.dtype.kind != "f":
        raise BadFileError(path, f"mean {mean.dtype} {mean.shape} and scale {scale.dtype} "
                                 f"{scale.shape} are not float arrays of {n_pixels} pixels")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
        raise BadFileError(path, "mean must be finite and scale finite and > 0")
    return mean, scale
