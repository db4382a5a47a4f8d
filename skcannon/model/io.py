"""Model files: HDF5, no pickle, with a checksum over the whole content (every attribute and
every dataset), so tampering or truncation is detected; loading also checks the content's meaning.

Layout (format ``skcannon-model``, version 3; an HDF5 file whose 512-byte user block holds the
seal, see :func:`skcannon.integrity.check_seal`)::

    /                 attrs: format, format_version, package_version, label_names (JSON),
                      order, terms ("" = all terms up to order), regularization,
                      n_training_stars, training_hash, provenance (JSON),
                      checksum (SHA-256 of all other attributes and every dataset)
    /theta            (n_pixels, n_terms) float64
    /exponents        (n_terms, n_labels) int64  power of each label in each term
    /s2               (n_pixels,) float64
    /pixel_mask       (n_pixels,) uint8
    /label_offsets    (n_labels,) float64   scaled = (label - offset) / scale
    /label_scales     (n_labels,) float64
    /label_range      (2, n_labels) float64 training minimum and maximum
    /wavelength       (n_pixels,) float64 (absent if unknown)
    /censor_mask      (n_labels, n_pixels) uint8 (absent if nothing is censored)
    /error_factors    (n_pixels, n_factors) float64 (absent without correlated model error)
    /training_log_likelihood, /training_chi2, /training_dof   (n_pixels,)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from skcannon._version import __version__
from skcannon.errors import BadFileError
from skcannon.inference.calibration import UncertaintyCalibration
from skcannon.integrity import read_sealed_hdf5, write_sealed_hdf5
from skcannon.model.scaling import LabelScaling
from skcannon.model.state import CannonState
from skcannon.model.vectorizer import PolynomialVectorizer

MODEL_FORMAT = "skcannon-model"
MODEL_FORMAT_VERSION = 3
#: Names of the arrays of a learned state (:func:`state_arrays`).
STATE_ARRAYS = ("theta", "exponents", "s2", "pixel_mask", "label_offsets", "label_scales",
           "label_range", "wavelength", "censor_mask", "error_factors", "calibration",
           "training_log_likelihood",
           "training_chi2", "training_dof")


def state_arrays(state: CannonState, exponents: np.ndarray) -> dict[str, np.ndarray]:
    """A learned state and its terms' ``exponents`` (n_terms, n_labels) as named arrays (the
    datasets of a model file; also :mod:`skcannon.persistence`'s)."""
    arrays = {
        "theta": np.asarray(state.theta, float), "s2": np.asarray(state.s2, float),
        "exponents": np.asarray(exponents, np.int64),
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
    if state.error_factors is not None:
        arrays["error_factors"] = np.asarray(state.error_factors, float)
    if state.censor_mask is not None:
        arrays["censor_mask"] = np.asarray(state.censor_mask, np.uint8)
    if state.calibration is not None:
        arrays["calibration"] = np.asarray(state.calibration, float)
    return arrays


def write_model(path: str | Path, params: dict, state: CannonState, exponents: np.ndarray, *,
                overwrite: bool = False, provenance: dict | None = None) -> Path:
    """Write a fitted model's parameters (``label_names``, ``order``, ``terms``,
    ``regularization``), its terms' ``exponents`` (n_terms, n_labels) and learned state to
    ``path`` atomically (refuses to overwrite unless asked)."""
    arrays = state_arrays(state, exponents)
    attrs = {
        "format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION,
        "package_version": __version__, "label_names": json.dumps(list(params["label_names"])),
        "order": int(params["order"]), "terms": params.get("terms") or "",
        "regularization": float(params["regularization"]),
        "n_training_stars": int(state.n_training_stars),
        "training_hash": state.training_hash,
        "provenance": json.dumps(provenance or {}, sort_keys=True, default=str),
    }
    return write_sealed_hdf5(path, attrs, arrays, overwrite=overwrite)


def read_model(path: str | Path) -> tuple[dict, CannonState, np.ndarray]:
    """Read a model file: the estimator parameters, the learned state and the terms' exponents.
    A foreign, truncated, tampered or wrong-version file, or one whose content makes no sense
    (repeated label names, non-positive scales, non-finite coefficients, negative s^2), raises
    :class:`BadFileError` naming the file."""
    attrs, arrays = read_sealed_hdf5(path, expected_format=MODEL_FORMAT,
                                     expected_version=MODEL_FORMAT_VERSION, what="model file")
    unknown = sorted(set(arrays) - set(STATE_ARRAYS))
    if unknown:       # a sealed file of this format cannot hold them: refuse, do not ignore
        raise BadFileError(path, f"unexpected datasets {', '.join(unknown)}")
    try:
        return _model_content(attrs, arrays)
    except (KeyError, TypeError, ValueError) as exc:      # checksum right, content wrong
        raise BadFileError(path, f"inconsistent model content ({exc})") from exc


def _model_content(attrs: dict, arrays: dict) -> tuple[dict, CannonState, np.ndarray]:
    """Parameters, state and exponents from a file's checked attributes and arrays."""
    names = tuple(json.loads(attrs["label_names"]))
    params = {"label_names": names, "order": int(attrs["order"]),
              "terms": str(attrs["terms"]) or None,
              "regularization": float(attrs["regularization"])}
    state = state_from_arrays(names, arrays, n_training_stars=int(attrs["n_training_stars"]),
                              training_hash=str(attrs["training_hash"]),
                              provenance=json.loads(attrs["provenance"]))
    return params, state, arrays["exponents"]


def state_from_arrays(names, arrays: dict, *, n_training_stars: int, training_hash: str,
                      provenance: dict) -> CannonState:
    """The learned state of labels ``names`` from the arrays of :func:`state_arrays`, checked
    for sense.

    Raises
    ------
    ValueError, KeyError
        Repeated label names, non-positive scales, non-finite coefficients, negative s^2, a
        calibration of another length, a missing array.
    """
    names = tuple(names)
    if len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"label names {names} are not distinct strings")
    scales, theta, s2 = arrays["label_scales"], arrays["theta"], arrays["s2"]
    if not (np.all(np.isfinite(scales)) and np.all(scales > 0)):
        raise ValueError("label scales must be finite and positive")
    if not (np.all(np.isfinite(theta)) and np.all(np.isfinite(s2)) and np.all(s2 >= 0)):
        raise ValueError("coefficients must be finite and s^2 finite and >= 0")
    if not np.all(np.isfinite(arrays["label_range"])):
        raise ValueError("the training label range must be finite")
    censor, factors = arrays.get("censor_mask"), arrays.get("error_factors")
    if factors is not None and not np.all(np.isfinite(factors)):
        raise ValueError("error factors must be finite")
    calibration = arrays.get("calibration")
    if calibration is not None:
        calibration = UncertaintyCalibration(calibration).floor
        if calibration.shape != (len(names),):
            raise ValueError(f"calibration has {calibration.size} labels; the model "
                             f"{len(names)}")
    return CannonState(
        theta=theta, s2=s2, pixel_mask=arrays["pixel_mask"].astype(bool),
        scaling=LabelScaling(names, arrays["label_offsets"], scales),
        label_range=arrays["label_range"], wavelength=arrays.get("wavelength"),
        training_log_likelihood=arrays["training_log_likelihood"],
        training_chi2=arrays["training_chi2"], training_dof=arrays["training_dof"],
        n_training_stars=int(n_training_stars), training_hash=str(training_hash),
        provenance=provenance,
        censor_mask=None if censor is None else censor.astype(bool), error_factors=factors,
        calibration=calibration,
        vectorizer=PolynomialVectorizer.from_exponents(arrays["exponents"]))
