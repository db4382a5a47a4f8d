"""The model as the commands and the survey use it: a fitted Pipeline (preprocessing ->
:class:`CannonRegressor`), loaded once with :func:`skcannon.load` and passed on as an object.

A model that carries no preprocessing (a bare :class:`Cannon`: the imported reference model, a
model trained from arrays) is wrapped with the standard APOGEE preprocessing and the continuum
pixels named by ``--continuum``; a model that carries its own refuses other continuum pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline

from skcannon.errors import SkcannonError
from skcannon.model import Cannon, CannonRegressor
from skcannon.persistence import fit_transformers, load

__all__ = ["cannon_of", "load_model", "model_pipeline"]


def load_model(path: str | Path):
    """The fitted Pipeline, Cannon or CannonRegressor in a model file (:func:`skcannon.load`).

    Parameters
    ----------
    path : str or Path
        A file written by :func:`skcannon.save`, or a model file of :meth:`Cannon.save`.

    Returns
    -------
    Pipeline, Cannon or CannonRegressor
        Fitted, as saved (see :func:`model_pipeline` for applying it to raw spectra).

    Raises
    ------
    BadFileError
        Naming the file: missing, damaged, foreign, another version, or not a model.
    """
    return load(path)


def cannon_of(model) -> Cannon:
    """The fitted :class:`Cannon` of a model: itself, a regressor's ``cannon_``, or that of a
    Pipeline's final regressor.

    Parameters
    ----------
    model : Pipeline, Cannon or CannonRegressor
        Fitted (as :func:`skcannon.load` returns it); a Pipeline ends in a CannonRegressor.

    Returns
    -------
    Cannon
        The model's Cannon itself (not a copy); anything else is returned unchanged.
    """
    final = model[-1] if isinstance(model, Pipeline) else model
    return final.cannon_ if isinstance(final, CannonRegressor) else final


def _continuum_mask(pipeline: Pipeline) -> np.ndarray | None:
    """The continuum pixels of a fitted Pipeline's normalizer (None without one)."""
    masks = [step.continuum_mask_ for _, step in pipeline.steps if hasattr(step, "continuum_mask_")]
    return masks[-1] if masks else None


def model_pipeline(model, continuum: str | Path | None = None) -> tuple[Pipeline, str]:
    """The fitted Pipeline that applies ``model`` to raw spectra, and where its
    preprocessing came from (in words).

    Parameters
    ----------
    model : Pipeline, Cannon or CannonRegressor
        Fitted (as :func:`skcannon.load` returns it).
    continuum : path, optional
        Continuum pixels, only for a model that carries no preprocessing: the standard masking
        and regridding, then normalization with these pixels.

    Returns
    -------
    pipeline : Pipeline
        Fitted; its last step a :class:`CannonRegressor`.
    source : str

    Raises
    ------
    SkcannonError
        ``continuum`` holds other pixels than the model's own preprocessing, or the model
        carries none and ``continuum`` is None.
    """
    from skcannon.apogee.preprocessor import default_preprocessor

    if isinstance(model, Pipeline):
        if continuum is not None:
            given = default_preprocessor(continuum)[-1].fit().continuum_mask_
            if not np.array_equal(given, _continuum_mask(model)):
                raise SkcannonError(f"--continuum: {continuum} holds other continuum pixels "
                                    "than the model was trained with; leave it out (the model "
                                    "carries its preprocessing)")
        return model, "the model's own (stored at training)"
    if continuum is None:
        raise SkcannonError("--continuum: the model does not record its preprocessing; name "
                            "the continuum pixel file its training spectra were normalized with")
    cannon = cannon_of(model)
    preprocessor = default_preprocessor(continuum)
    regressor = (model if isinstance(model, CannonRegressor)
                 else CannonRegressor.from_fitted(cannon))
    pipeline = Pipeline([*preprocessor.steps, ("cannonregressor", regressor)])
    try:
        fit_transformers(pipeline, preprocessor[1].fit().source_wavelength_.size)
    except ValueError as exc:
        raise SkcannonError(f"--continuum: {continuum}: {exc}") from exc
    return pipeline, f"standard, {continuum}"
