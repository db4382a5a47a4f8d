"""Model files: HDF5, no pickle, with a checksum so tampering or truncation is detected.

Layout (format ``skcannon-model``, version 1)::

    /                 attrs: format, format_version, package_version, label_names (JSON),
                      order, regularization, n_training_stars, training_hash, provenance (JSON),
                      checksum (SHA-256 of every dataset below, in name order)
    /theta            (n_pixels, n_terms) float64
    /s2               (n_pixels,) float64
    /pixel_mask       (n_pixels,) uint8
    /label_offsets    (n_labels,) float64   scaled = (label - offset) / scale
    /label_scales     (n_labels,) float64
    /label_range      (2, n_labels) float64 training minimum and maximum
    /wavelength       (n_pixels,) float64 (absent if unknown)
    /training_log_likelihood, /training_chi2, /training_dof   (n_pixels,)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from skcannon._version import __version__
from skcannon.errors import BadFileError
from skcannon.integrity import array_digest, atomic_write, check_format
from skcannon.model.scaling import LabelScaling
from skcannon.model.state import CannonState

MODEL_FORMAT = "skcannon-model"
MODEL_FORMAT_VERSION = 1
_ARRAYS = ("theta", "s2", "pixel_mask", "label_offsets", "label_scales", "label_range",
           "wavelength", "training_log_likelihood", "training_chi2", "training_dof")


def _state_arrays(state: CannonState) -> dict[str, np.ndarray]:
    arrays = {
        "theta": np.asarray(state.theta, float), "s2": np.asarray(state.s2, float),
        "pixel_mask": np.asarray(state.pixel_mask, np.uint8),
        "label_offsets": np.asarray(state.scaling.offsets, float),
        "label_scales": np.asarray(state.scaling.scales, float),
        "label_range": np.asarray(state.label_range, float),
        "training_log_likelihood": np.asarray(state.training_log_likelihood, float),
        "training_chi2": np.asarray(state.training_chi2, float),
        "training_dof": np.asarray(state.training_dof, float),
    }
    if state.wavelength is not None:
        arrays["wavelength"] = np.asarray(state.wavelength, float)
    return arrays


def write_model(path: str | Path, params: dict, state: CannonState, *, overwrite: bool = False,
                provenance: dict | None = None) -> Path:
    """Write a fitted model's parameters (``label_names``, ``order``, ``regularization``) and
    learned state to ``path`` atomically (refuses to overwrite unless asked)."""
    import h5py

    arrays = _state_arrays(state)
    with atomic_write(path, overwrite=overwrite) as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs.update({
            "format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION,
            "package_version": __version__, "label_names": json.dumps(list(params["label_names"])),
            "order": int(params["order"]), "regularization": float(params["regularization"]),
            "n_training_stars": int(state.n_training_stars),
            "training_hash": state.training_hash,
            "provenance": json.dumps(provenance or {}, sort_keys=True, default=str),
            "checksum": array_digest(arrays),
        })
        for name, array in arrays.items():
            h5.create_dataset(name, data=array)
    return Path(path)


def read_model(path: str | Path) -> tuple[dict, CannonState]:
    """Read a model file: the estimator parameters and the learned state. A foreign,
    truncated, tampered or wrong-version file raises :class:`BadFileError` naming the file."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise BadFileError(path, "no such model file")
    try:
        with h5py.File(path, "r") as h5:
            attrs = dict(h5.attrs)
            check_format(path, attrs, expected_format=MODEL_FORMAT,
                         expected_version=MODEL_FORMAT_VERSION, what="model file")
            arrays = {name: h5[name][()] for name in _ARRAYS if name in h5}
    except BadFileError:
        raise
    except Exception as exc:
        raise BadFileError(path, f"cannot be read as a model file ({type(exc).__name__}: "
                                 f"{exc})") from exc
    if array_digest(arrays) != attrs.get("checksum"):
        raise BadFileError(path, "checksum mismatch: the file was modified or damaged")
    names = tuple(json.loads(attrs["label_names"]))
    params = {"label_names": names, "order": int(attrs["order"]),
              "regularization": float(attrs["regularization"])}
    try:
        state = CannonState(
            theta=arrays["theta"], s2=arrays["s2"],
            pixel_mask=arrays["pixel_mask"].astype(bool),
            scaling=LabelScaling(names, arrays["label_offsets"], arrays["label_scales"]),
            label_range=arrays["label_range"], wavelength=arrays.get("wavelength"),
            training_log_likelihood=arrays["training_log_likelihood"],
            training_chi2=arrays["training_chi2"], training_dof=arrays["training_dof"],
            n_training_stars=int(attrs["n_training_stars"]),
            training_hash=str(attrs["training_hash"]),
            provenance=json.loads(attrs["provenance"]))
    except ValueError as exc:
        raise BadFileError(path, str(exc)) from exc
    return params, state
