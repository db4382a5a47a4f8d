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

import hashlib
import json
from pathlib import Path

import numpy as np

from skcannon._version import __version__
from skcannon.errors import BadFileError
from skcannon.model.scaling import LabelScaling

MODEL_FORMAT = "skcannon-model"
MODEL_FORMAT_VERSION = 1
_ARRAYS = ("theta", "s2", "pixel_mask", "label_offsets", "label_scales", "label_range",
           "wavelength", "training_log_likelihood", "training_chi2", "training_dof")


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()


def save_model(model, path, overwrite: bool = False, provenance: dict | None = None) -> Path:
    """Write a fitted :class:`Cannon` to ``path`` (refuses to overwrite unless asked)."""
    import h5py

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    arrays = {
        "theta": np.asarray(model.theta_, float), "s2": np.asarray(model.s2_, float),
        "pixel_mask": np.asarray(model.pixel_mask_, np.uint8),
        "label_offsets": np.asarray(model.scaling_.offsets, float),
        "label_scales": np.asarray(model.scaling_.scales, float),
        "label_range": np.asarray(model.label_range_, float),
        "training_log_likelihood": np.asarray(model.training_log_likelihood_, float),
        "training_chi2": np.asarray(model.training_chi2_, float),
        "training_dof": np.asarray(model.training_dof_, float),
    }
    if model.wavelength_ is not None:
        arrays["wavelength"] = np.asarray(model.wavelength_, float)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    with h5py.File(tmp, "w") as h5:
        h5.attrs.update({
            "format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION,
            "package_version": __version__, "label_names": json.dumps(list(model.label_names)),
            "order": int(model.order), "regularization": float(model.regularization),
            "n_training_stars": int(model.n_training_stars_),
            "training_hash": model.training_hash_,
            "provenance": json.dumps(provenance or {}, sort_keys=True, default=str),
            "checksum": _checksum(arrays),
        })
        for name, array in arrays.items():
            h5.create_dataset(name, data=array)
    tmp.replace(path)
    return path


def load_model(path):
    """Read a model file; a foreign, truncated, tampered or wrong-version file raises
    :class:`BadFileError` naming the file and the problem."""
    import h5py

    from skcannon.model.cannon import Cannon

    path = Path(path)
    if not path.is_file():
        raise BadFileError(path, "no such model file")
    try:
        with h5py.File(path, "r") as h5:
            attrs = dict(h5.attrs)
            if attrs.get("format") != MODEL_FORMAT:
                raise BadFileError(path, "not an skcannon model file (no format attribute)")
            version = int(attrs.get("format_version", -1))
            if version != MODEL_FORMAT_VERSION:
                raise BadFileError(path, f"model format version {version}; this skcannon "
                                         f"reads version {MODEL_FORMAT_VERSION}")
            arrays = {name: h5[name][()] for name in _ARRAYS if name in h5}
    except BadFileError:
        raise
    except Exception as exc:
        raise BadFileError(path, f"cannot be read as a model file ({type(exc).__name__}: "
                                 f"{exc})") from exc
    if _checksum(arrays) != attrs.get("checksum"):
        raise BadFileError(path, "checksum mismatch: the file was modified or damaged")
    names = json.loads(attrs["label_names"])
    model = Cannon(label_names=tuple(names), order=int(attrs["order"]),
                   regularization=float(attrs["regularization"]))
    model.theta_ = arrays["theta"]
    model.s2_ = arrays["s2"]
    model.pixel_mask_ = arrays["pixel_mask"].astype(bool)
    model.scaling_ = LabelScaling(tuple(names), arrays["label_offsets"], arrays["label_scales"])
    model.label_range_ = arrays["label_range"]
    model.wavelength_ = arrays.get("wavelength")
    model.training_log_likelihood_ = arrays["training_log_likelihood"]
    model.training_chi2_ = arrays["training_chi2"]
    model.training_dof_ = arrays["training_dof"]
    model.n_training_stars_ = int(attrs["n_training_stars"])
    model.training_hash_ = str(attrs["training_hash"])
    model.provenance_ = json.loads(attrs["provenance"])
    if model.theta_.shape != (model.s2_.size, model.vectorizer_.n_terms):
        raise BadFileError(path, f"theta has shape {model.theta_.shape}; expected "
                                 f"({model.s2_.size}, {model.vectorizer_.n_terms})")
    return model
