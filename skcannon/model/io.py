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
    /label_hull       (n_vertices, n_labels) float64 vertices of the training labels' convex
                      hull (absent in older files: the label_range box is used)
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
           "label_hull", "training_log_likelihood",
           "training_chi2", "training_dof")
#: Largest plausible intrinsic variance s^2 of a pixel in a model file, in normalized flux
#: squared (a scatter of 10 times the continuum; training's default grid ends at 10).
MAX_S2 = 1e2
#: State arrays that hold floating-point numbers, all finite.
_FLOAT_ARRAYS = ("theta", "s2", "label_offsets", "label_scales", "label_range", "wavelength",
                 "error_factors", "calibration", "label_hull", "training_log_likelihood",
                 "training_chi2", "training_dof")
#: State arrays that hold masks (bool, or integers 0/1).
_MASK_ARRAYS = ("pixel_mask", "censor_mask")


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
    if state.label_hull is not None:
        arrays["label_hull"] = np.asarray(state.label_hull, float)
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
    (see :func:`check_state_arrays`), raises :class:`BadFileError` naming the file."""
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
    for sense (:func:`check_state_arrays`).

    Parameters
    ----------
    names : sequence of str of length n_labels
    arrays : dict of str to ndarray
        As :func:`state_arrays` writes them.
    n_training_stars : int
    training_hash : str
    provenance : dict

    Returns
    -------
    CannonState

    Raises
    ------
    ValueError, KeyError
        Content that makes no sense (see :func:`check_state_arrays`), or a missing array.
    """
    names = tuple(names)
    check_state_arrays(names, arrays)
    if int(n_training_stars) < 1:
        raise ValueError(f"n_training_stars is {n_training_stars}; a model is trained on >= 1")
    if not isinstance(provenance, dict):
        raise ValueError("the provenance is not a JSON object")
    censor, calibration = arrays.get("censor_mask"), arrays.get("calibration")
    if calibration is not None:
        calibration = UncertaintyCalibration(calibration).floor
    return CannonState(
        theta=arrays["theta"], s2=arrays["s2"], pixel_mask=arrays["pixel_mask"].astype(bool),
        scaling=LabelScaling(names, arrays["label_offsets"], arrays["label_scales"]),
        label_range=arrays["label_range"], wavelength=arrays.get("wavelength"),
        training_log_likelihood=arrays["training_log_likelihood"],
        training_chi2=arrays["training_chi2"], training_dof=arrays["training_dof"],
        n_training_stars=int(n_training_stars), training_hash=str(training_hash),
        provenance=provenance,
        censor_mask=None if censor is None else censor.astype(bool),
        error_factors=arrays.get("error_factors"), calibration=calibration,
        label_hull=arrays.get("label_hull"),
        vectorizer=PolynomialVectorizer.from_exponents(arrays["exponents"]))


def check_state_arrays(names: tuple[str, ...], arrays: dict) -> None:
    """Check that the arrays of a learned state (:func:`state_arrays`) mean something: the
    seal of a file proves its bytes are ours, not that they make sense.

    Parameters
    ----------
    names : tuple of str of length n_labels
    arrays : dict of str to ndarray

    Raises
    ------
    ValueError
        Naming the array: repeated label names; a float array stored as another type (theta
        as int64), a mask that is not 0/1, negative exponents; shapes that disagree;
        non-finite values; s^2 negative or above :data:`MAX_S2`; scales not positive; a label
        range reversed or empty; a wavelength grid not increasing; no pixel described; a
        label censored on every pixel.
    KeyError
        A required array is missing.
    """
    if len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"label names {names} are not distinct strings")
    _check_kinds(arrays)
    n_pixels, n_labels = arrays["theta"].shape[0], len(names)
    _check_shapes(arrays, n_pixels, arrays["theta"].shape[1], n_labels)
    for key in _FLOAT_ARRAYS:
        if key in arrays and not np.all(np.isfinite(arrays[key])):
            raise ValueError(f"{key} holds non-finite values")
    s2 = arrays["s2"]
    if np.any(s2 < 0) or np.any(s2 > MAX_S2):
        raise ValueError(f"s2 ranges {s2.min():g}..{s2.max():g}; a plausible intrinsic "
                         f"variance is 0..{MAX_S2:g} (normalized flux squared)")
    if not np.all(arrays["label_scales"] > 0):
        raise ValueError("label scales must be positive")
    low, high = arrays["label_range"]
    for name, a, b in zip(names, low, high, strict=True):
        if not a < b:
            raise ValueError(f"label_range of {name} is reversed or empty (minimum {a:g}, "
                             f"maximum {b:g})")
    wavelength = arrays.get("wavelength")
    if wavelength is not None and np.any(np.diff(wavelength) <= 0):
        raise ValueError("wavelength is not strictly increasing")
    if not arrays["pixel_mask"].any():
        raise ValueError("pixel_mask is False everywhere: the model describes no pixel")
    censor = arrays.get("censor_mask")
    if censor is not None and not censor.any(axis=1).all():
        empty = [name for name, row in zip(names, censor, strict=True) if not row.any()]
        raise ValueError(f"censor_mask lets {', '.join(empty)} act on no pixel")


def _check_kinds(arrays: dict) -> None:
    """Every array of a state of the right kind: floats, non-negative integer exponents,
    0/1 masks (ValueError naming the array)."""
    for key, array in arrays.items():
        array = np.asarray(array)
        if key in _FLOAT_ARRAYS and array.dtype.kind != "f":
            raise ValueError(f"{key} is stored as {array.dtype}; expected floating point")
        if key == "exponents" and (array.dtype.kind not in "iu" or np.any(array < 0)):
            raise ValueError(f"exponents must be non-negative integers; got {array.dtype}")
        if key in _MASK_ARRAYS and (array.dtype.kind not in "biu"
                                    or not np.all((array == 0) | (array == 1))):
            raise ValueError(f"{key} must hold 0/1 values; got {array.dtype}")


def _check_shapes(arrays: dict, n_pixels: int, n_terms: int, n_labels: int) -> None:
    """The shape of every array of a state agrees with theta's (n_pixels, n_terms) and the
    label count (ValueError naming the array)."""
    expected = {"theta": (n_pixels, n_terms), "exponents": (n_terms, n_labels),
                "s2": (n_pixels,), "pixel_mask": (n_pixels,), "label_offsets": (n_labels,),
                "label_scales": (n_labels,), "label_range": (2, n_labels),
                "wavelength": (n_pixels,), "censor_mask": (n_labels, n_pixels),
                "calibration": (n_labels,), "training_log_likelihood": (n_pixels,),
                "training_chi2": (n_pixels,), "training_dof": (n_pixels,)}
    for key, shape in expected.items():
        if key in arrays and np.shape(arrays[key]) != shape:
            raise ValueError(f"{key} has shape {np.shape(arrays[key])}; expected {shape}")
    hull = arrays.get("label_hull")
    if hull is not None and (np.ndim(hull) != 2 or np.shape(hull)[1] != n_labels):
        raise ValueError(f"label_hull has shape {np.shape(hull)}; expected (n_vertices, "
                         f"{n_labels})")
    factors = arrays.get("error_factors")
    if factors is not None and (np.ndim(factors) != 2 or np.shape(factors)[0] != n_pixels):
        raise ValueError(f"error_factors has shape {np.shape(factors)}; expected "
                         f"({n_pixels}, n_factors)")
