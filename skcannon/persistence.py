"""Save and load fitted estimators: the fitted Pipeline is the model.

:func:`save` writes a fitted :class:`~sklearn.pipeline.Pipeline` of skcannon transformers
ending in a fitted :class:`~skcannon.model.CannonRegressor`, or a bare fitted
:class:`~skcannon.model.Cannon` or ``CannonRegressor``, to one sealed HDF5 file; :func:`load`
gives it back ready to ``predict``. No pickle, no code named by a file is ever run.

Layout (format ``skcannon-estimator``, version 1; sealed and checksummed like every skcannon
file, see :func:`skcannon.integrity.write_sealed_hdf5`)::

    /             attrs: format, format_version, package_version, provenance (JSON),
                  estimator (JSON: the object tree), checksum
    /params/<k>   arrays inside parameters (grids, continuum masks, censoring masks)
    /state/<k>/   a fitted Cannon's learned state (the datasets of a model file,
                  :func:`skcannon.model.io.state_arrays`)

The object tree: ``{"class": name, "params": {...}}`` per estimator, its parameters those of
``get_params(deep=False)`` - written generically, so a transformer's new parameter needs no
change here - with arrays as ``{"__array__": dataset}``, tuples as ``{"__tuple__": [...]}``,
dicts as ``{"__dict__": {...}}`` and estimators as nodes. Class names come from an allow-list
(:data:`ESTIMATOR_CLASSES`); any other name is refused. A parameter naming a file (the
continuum pixels) is stored as what the fitted step read from it. A fitted Cannon's node holds
``"state"``; a regressor's ``"cannon_"``; a Pipeline's ``"n_pixels_in"``, the width of its
input: its transformers learn nothing from data beyond it and are re-fitted at load on a
placeholder spectrum of that width.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from skcannon._version import __version__
from skcannon.errors import BadFileError
from skcannon.integrity import content_digest, read_sealed_hdf5, write_sealed_hdf5
from skcannon.model.cannon import Cannon
from skcannon.model.io import MODEL_FORMAT, STATE_ARRAYS, state_arrays, state_from_arrays
from skcannon.model.regressor import CannonRegressor
from skcannon.preprocessing import BitmaskMasker, ContinuumNormalizer, Regridder

__all__ = ["ESTIMATOR_CLASSES", "ESTIMATOR_FORMAT", "ESTIMATOR_FORMAT_VERSION",
           "fit_transformers", "load", "model_digest", "pipeline_from_recipe", "save"]

ESTIMATOR_FORMAT = "skcannon-estimator"
ESTIMATOR_FORMAT_VERSION = 1
#: The classes a file may name (the allow-list): nothing else is ever built from a file.
ESTIMATOR_CLASSES: dict[str, type] = {cls.__name__: cls for cls in (
    Pipeline, BitmaskMasker, Regridder, ContinuumNormalizer, Cannon, CannonRegressor)}
#: Parameters that may name a file, per class: stored as the fitted attribute read from it.
_FILE_PARAMETERS = {"ContinuumNormalizer": {"continuum_pixels": "continuum_mask_"}}
#: Fitted attributes telling a transformer's input width, in the order they are looked for.
_WIDTH_ATTRIBUTES = ("n_pixels_", "source_wavelength_", "wavelength_")
_ARRAY, _TUPLE, _DICT = "__array__", "__tuple__", "__dict__"


class _Encoder:
    """The JSON tree of an estimator, collecting its arrays (name -> array)."""

    def __init__(self, *, provenance: bool = True) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.n_states = 0
        self.provenance = provenance

    def value(self, value, where: str):
        """A parameter value as JSON (arrays, tuples, dicts and estimators marked)."""
        if isinstance(value, np.generic):
            value = value.item()
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, np.ndarray):
            name = f"params/{len(self.arrays)}"
            self.arrays[name] = value
            return {_ARRAY: name}
        if isinstance(value, tuple | list):
            items = [self.value(v, f"{where}[{k}]") for k, v in enumerate(value)]
            return {_TUPLE: items} if isinstance(value, tuple) else items
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {_DICT: {k: self.value(v, f"{where}.{k}") for k, v in value.items()}}
        if isinstance(value, BaseEstimator):
            return self.node(value)
        raise ValueError(f"cannot store {where} (a {type(value).__name__})")

    def node(self, estimator: BaseEstimator) -> dict:
        """One estimator: its class, parameters and what it learned that is not re-fitted."""
        name = type(estimator).__name__
        if ESTIMATOR_CLASSES.get(name) is not type(estimator):
            raise ValueError(f"cannot store a {name}: skcannon stores only "
                             f"{', '.join(ESTIMATOR_CLASSES)}")
        params = estimator.get_params(deep=False)
        for param, attribute in _FILE_PARAMETERS.get(name, {}).items():
            if isinstance(params.get(param), str | os.PathLike):
                check_is_fitted(estimator, attribute)
                params[param] = getattr(estimator, attribute)
        node = {"class": name, "params": {k: self.value(v, f"{name}.{k}")
                                          for k, v in params.items()}}
        if isinstance(estimator, Cannon) and hasattr(estimator, "theta_"):
            node["state"] = self.state(estimator)
        if isinstance(estimator, CannonRegressor):
            estimator.check_fitted()
            node["cannon_"] = self.node(estimator.cannon_)
        if isinstance(estimator, Pipeline):
            node["n_pixels_in"] = _input_width(estimator)
        return node

    def state(self, cannon: Cannon) -> dict:
        """A fitted Cannon's learned state: its arrays stored, its scalars returned."""
        prefix = f"state/{self.n_states}"
        self.n_states += 1
        state = cannon.state_
        arrays = state_arrays(state, cannon.vectorizer_.exponents)
        for key, array in arrays.items():
            self.arrays[f"{prefix}/{key}"] = array
        # the memory layout too: BLAS sums a Fortran-ordered matrix in another order, and a
        # restored model must give the same labels to the last bit
        fortran = sorted(k for k, a in arrays.items() if a.ndim > 1 and a.flags.f_contiguous
                         and not a.flags.c_contiguous)
        return {"arrays": prefix, "fortran": fortran,
                "n_training_stars": int(state.n_training_stars),
                "training_hash": state.training_hash,
                "provenance": json.dumps(state.provenance if self.provenance else {},
                                         sort_keys=True, default=str)}


def _input_width(pipeline: Pipeline) -> int:
    """Pixels per spectrum a fitted Pipeline takes (from its first step's fitted attributes)."""
    first = pipeline.steps[0][1]
    if isinstance(first, CannonRegressor):
        check_is_fitted(first, "cannon_")
        return int(first.cannon_.theta_.shape[0])
    for attribute in _WIDTH_ATTRIBUTES:
        value = getattr(first, attribute, None)
        if value is not None:
            return int(value if np.ndim(value) == 0 else np.size(value))
    raise ValueError(f"cannot tell the input width of the Pipeline's first step "
                     f"({type(first).__name__}): is it fitted?")


class _Decoder:
    """Estimators from a JSON tree and its arrays; every array must be used."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays
        self.used: set[str] = set()

    def value(self, value):
        """A parameter value from its JSON form."""
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {_ARRAY}:
            self.used.add(value[_ARRAY])
            return self.arrays[value[_ARRAY]]
        if set(value) == {_TUPLE}:
            return tuple(self.value(v) for v in value[_TUPLE])
        if set(value) == {_DICT}:
            return {k: self.value(v) for k, v in value[_DICT].items()}
        if "class" in value:
            return self.node(value)
        raise ValueError(f"unknown value {sorted(value)}")

    def node(self, node: dict) -> BaseEstimator:
        """An estimator of an allowed class, fitted as it was saved."""
        cls = ESTIMATOR_CLASSES.get(node["class"])
        if cls is None:
            raise ValueError(f"class {node['class']!r} is not one skcannon stores "
                             f"({', '.join(ESTIMATOR_CLASSES)}); refused")
        estimator = cls(**{k: self.value(v) for k, v in node["params"].items()})
        if "state" in node:
            self.restore(estimator, node["state"])
        if "cannon_" in node:
            fitted = self.node(node["cannon_"])
            if not isinstance(fitted, Cannon) or not hasattr(fitted, "theta_"):
                raise ValueError("a CannonRegressor's cannon_ is not a fitted Cannon")
            estimator.cannon_ = fitted
        if isinstance(estimator, Pipeline):
            fit_transformers(estimator, int(node["n_pixels_in"]))
        return estimator

    def restore(self, cannon: Cannon, spec: dict) -> None:
        """Set a Cannon's learned state from its arrays (checked, then its terms compared)."""
        prefix = spec["arrays"] + "/"
        arrays = {k.removeprefix(prefix): v for k, v in self.arrays.items()
                  if k.startswith(prefix)}
        unknown = sorted(set(arrays) - set(STATE_ARRAYS))
        if unknown:       # a sealed file of this format cannot hold them: refuse, not ignore
            raise ValueError(f"unexpected state arrays {', '.join(unknown)}")
        arrays.update({k: np.asfortranarray(arrays[k]) for k in spec.get("fortran", [])})
        self.used.update(prefix + k for k in arrays)
        state = state_from_arrays(cannon.label_names, arrays,
                                  n_training_stars=spec["n_training_stars"],
                                  training_hash=spec["training_hash"],
                                  provenance=json.loads(spec["provenance"]))
        if not np.array_equal(cannon.vectorizer_.exponents, arrays["exponents"]):
            raise ValueError("the stored term exponents do not match the model's terms")
        cannon._set_state(state)


def fit_transformers(pipeline: Pipeline, n_pixels: int) -> Pipeline:
    """Fit the transformers of ``pipeline`` (all steps but a final regressor) in place on a
    placeholder spectrum (flux 1, inverse variance 1) of ``n_pixels`` pixels: they learn
    nothing from data beyond its width.

    Parameters
    ----------
    pipeline : Pipeline
    n_pixels : int
        Pixels per input spectrum.

    Returns
    -------
    Pipeline
        ``pipeline``, its transformers fitted.

    Raises
    ------
    ValueError
        The final regressor's model is for another number of pixels than the transformers
        produce.
    """
    X = np.zeros((1, 3, n_pixels))
    X[:, :2] = 1.0
    steps = [step for _, step in pipeline.steps]
    for step in steps if not isinstance(steps[-1], CannonRegressor) else steps[:-1]:
        X = step.fit(X).transform(X)
    final = steps[-1]
    if isinstance(final, CannonRegressor) and hasattr(final, "cannon_") \
            and final.cannon_.theta_.shape[0] != X.shape[2]:
        raise ValueError(f"the preprocessing gives {X.shape[2]} pixels; the model has "
                         f"{final.cannon_.theta_.shape[0]}")
    return pipeline


def _content(obj, *, provenance: bool = True) -> tuple[dict, dict[str, np.ndarray]]:
    """The JSON tree (as text) and the arrays of a fitted estimator (refused otherwise);
    ``provenance``: with the Cannon's own."""
    if isinstance(obj, Pipeline):
        if not obj.steps or not isinstance(obj.steps[-1][1], CannonRegressor):
            raise ValueError("a Pipeline to save must end in a CannonRegressor")
    elif isinstance(obj, Cannon):
        check_is_fitted(obj, "theta_")
    elif not isinstance(obj, CannonRegressor):
        raise TypeError(f"save takes a fitted Pipeline, Cannon or CannonRegressor; got a "
                        f"{type(obj).__name__}")
    encoder = _Encoder(provenance=provenance)
    tree = encoder.node(obj)
    return {"estimator": json.dumps(tree, sort_keys=True)}, encoder.arrays


def model_digest(obj) -> str:
    """SHA-256 of a fitted estimator's content as :func:`save` stores it (its object tree,
    parameters and learned state; no provenance): changes with the preprocessing as with the
    model.

    Parameters
    ----------
    obj : Pipeline, Cannon or CannonRegressor
        Fitted, as :func:`save` takes it: a Pipeline of skcannon transformers ending in a
        CannonRegressor, or a bare Cannon or CannonRegressor.

    Returns
    -------
    str
        Hex digest (64 characters); equal for estimators :func:`save` would store alike.

    Raises
    ------
    TypeError
        ``obj`` is none of the estimators above.
    ValueError
        A Pipeline not ending in a CannonRegressor, or a step or value skcannon cannot store.
    sklearn.exceptions.NotFittedError
        ``obj`` (or its final regressor) is not fitted.
    """
    attrs, arrays = _content(obj, provenance=False)
    return content_digest(attrs, arrays)


def save(obj, path: str | Path, *, overwrite: bool = False, provenance: dict | None = None
         ) -> Path:
    """Write a fitted estimator to one sealed HDF5 file (see the module docstring).

    Parameters
    ----------
    obj : Pipeline, Cannon or CannonRegressor
        Fitted: a Pipeline of skcannon transformers ending in a CannonRegressor, or a bare
        Cannon or CannonRegressor.
    path : path
        The file to write (atomically).
    overwrite : bool, default=False
        Replace an existing file (else FileExistsError, before any work).
    provenance : dict or None, default=None
        Where the model came from (JSON-able), stored and checksummed with it; after
        :func:`load`, part of the Cannon's ``provenance_`` (beside what it held itself).

    Returns
    -------
    Path
        ``path``.
    """
    if Path(path).exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    attrs, arrays = _content(obj)
    attrs.update({"format": ESTIMATOR_FORMAT, "format_version": ESTIMATOR_FORMAT_VERSION,
                  "package_version": __version__,
                  "provenance": json.dumps(provenance or {}, sort_keys=True, default=str)})
    return write_sealed_hdf5(path, attrs, arrays, overwrite=overwrite)


def load(path: str | Path):
    """Read a file written by :func:`save`, or a model file of :meth:`Cannon.save`.

    Parameters
    ----------
    path : path

    Returns
    -------
    Pipeline, Cannon or CannonRegressor
        Fitted, as saved. An old model file (format ``skcannon-model``) whose provenance
        records its preprocessing recipe comes back as the Pipeline (that preprocessing, then
        ``CannonRegressor.from_fitted(cannon)``); one without as the bare Cannon.

    Raises
    ------
    BadFileError
        Naming the file: missing, damaged, foreign, another version, a class outside the
        allow-list, or content that makes no sense.
    """
    if _format_of(path) == MODEL_FORMAT:
        return _load_model_file(path)
    attrs, arrays = read_sealed_hdf5(path, expected_format=ESTIMATOR_FORMAT,
                                     expected_version=ESTIMATOR_FORMAT_VERSION,
                                     what="estimator file")
    decoder = _Decoder(arrays)
    try:
        obj = decoder.node(json.loads(attrs["estimator"]))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadFileError(path, f"inconsistent estimator content ({exc})") from exc
    unused = sorted(set(arrays) - decoder.used)
    if unused:
        raise BadFileError(path, f"unexpected datasets {', '.join(unused)}")
    final = obj[-1] if isinstance(obj, Pipeline) else obj
    if not isinstance(final, Cannon | CannonRegressor):
        raise BadFileError(path, f"holds a bare {type(obj).__name__}, not a model")
    if not hasattr(final, "cannon_" if isinstance(final, CannonRegressor) else "theta_"):
        raise BadFileError(path, f"holds an unfitted {type(final).__name__}")
    cannon = final.cannon_ if isinstance(final, CannonRegressor) else final
    cannon.provenance_ = {**json.loads(attrs["provenance"]), **(cannon.provenance_ or {})}
    return obj


def _format_of(path: str | Path) -> str | None:
    """The ``format`` attribute of a sealed skcannon file (seal checked first)."""
    import h5py

    from skcannon.integrity import check_seal

    path = Path(path)
    if not path.is_file():
        raise BadFileError(path, "no such model file")
    check_seal(path, "model file")
    try:
        with h5py.File(path, "r") as h5:
            found = h5.attrs.get("format")
    except Exception as exc:
        raise BadFileError(path, f"cannot be read as a model file ({type(exc).__name__}: "
                                 f"{exc})") from exc
    return found.decode(errors="replace") if isinstance(found, bytes) else found


def _load_model_file(path: str | Path):
    """A format-3 model file: the bare Cannon, or the Pipeline its recipe describes."""
    cannon = Cannon.load(path)
    recipe = cannon.provenance_.get("preprocessing")
    if not recipe:
        return cannon
    try:
        return pipeline_from_recipe(cannon, recipe)
    except ValueError as exc:
        raise BadFileError(path, f"its preprocessing recipe: {exc}") from exc


def pipeline_from_recipe(cannon: Cannon, recipe: dict) -> Pipeline:
    """The fitted Pipeline of a preprocessing recipe (:mod:`skcannon.apogee.preprocessor`,
    as datasets and format-3 model files record it) ending in the fitted ``cannon``.

    Parameters
    ----------
    cannon : Cannon
        Fitted.
    recipe : dict

    Returns
    -------
    Pipeline
        The recipe's steps, fitted, then ``CannonRegressor.from_fitted(cannon)``.

    Raises
    ------
    ValueError
        Not a recipe, or one whose spectra the model cannot take.
    """
    from skcannon.apogee.preprocessor import preprocessor_from_recipe

    preprocessor = preprocessor_from_recipe(recipe)
    pipeline = Pipeline([*preprocessor.steps,
                         ("cannonregressor", CannonRegressor.from_fitted(cannon))])
    return fit_transformers(pipeline, preprocessor[1].fit().source_wavelength_.size)
