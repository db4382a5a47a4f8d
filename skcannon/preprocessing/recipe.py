"""The preprocessing a model was trained with, as plain data stored with the model.

A model is only right for spectra prepared exactly as its training spectra were (same masked
bits, same grid, same continuum pixels and basis). :func:`preprocessing_recipe` turns the
preprocessing Pipeline (:class:`BitmaskMasker` -> :class:`Regridder` ->
:class:`ContinuumNormalizer`) into a JSON-able dict - the continuum pixels themselves, not the
name of a file that may change - and :func:`preprocessor_from_recipe` builds the same Pipeline
back, so whoever applies the model (``skcannon survey``, ``skcannon fit`` on FITS files) cannot
mismatch it. The model file's checksum covers the recipe (it is part of the provenance).
"""

from __future__ import annotations

import hashlib

import numpy as np
from sklearn.base import clone
from sklearn.pipeline import Pipeline, make_pipeline

from skcannon.preprocessing.continuum import ContinuumNormalizer
from skcannon.preprocessing.masking import BitmaskMasker
from skcannon.preprocessing.regrid import Regridder

#: Identifies a recipe dict (and its layout version).
RECIPE_FORMAT = "skcannon-preprocessing-1"
#: ContinuumNormalizer parameters stored as they are.
_NORMALIZER_OPTIONS = ("basis", "order", "clip_sigma", "max_iter", "min_pixels")


def default_preprocessor(continuum_pixels, **normalizer_options) -> Pipeline:
    """masking -> regridding onto the continuum grid -> continuum normalization."""
    return make_pipeline(BitmaskMasker(), Regridder(),
                         ContinuumNormalizer(continuum_pixels, **normalizer_options))


def _grid(values) -> list[float] | None:
    return None if values is None else [float(v) for v in np.asarray(values, float)]


def preprocessing_recipe(preprocessor: Pipeline) -> dict:
    """The recipe of a masking -> regridding -> continuum-normalization Pipeline.

    Parameters
    ----------
    preprocessor : Pipeline
        Steps :class:`BitmaskMasker`, :class:`Regridder`, :class:`ContinuumNormalizer` (fitted
        or not; the normalizer's continuum pixels are resolved, a file is read here).

    Returns
    -------
    dict
        ``format``, ``bad_bits``, ``source_wavelength`` and ``target_wavelength`` (None: the
        standard apStar and 7214-pixel grids), ``continuum_pixels`` (indices on the target
        grid), ``n_pixels``, ``continuum_sha256`` and the normalizer's options.
    """
    steps = [step for _, step in preprocessor.steps]
    kinds = (BitmaskMasker, Regridder, ContinuumNormalizer)
    if len(steps) != 3 or not all(isinstance(s, k) for s, k in zip(steps, kinds, strict=True)):
        raise ValueError("a preprocessing recipe needs the steps BitmaskMasker, Regridder, "
                         f"ContinuumNormalizer; got {[type(s).__name__ for s in steps]}")
    masker, regridder, normalizer = steps
    resolved = clone(normalizer).fit()
    indices = np.flatnonzero(resolved.continuum_mask_)
    return {
        "format": RECIPE_FORMAT,
        "bad_bits": sorted(int(b) for b in masker.bad_bits),
        "source_wavelength": _grid(regridder.source_wavelength),
        "target_wavelength": _grid(regridder.target_wavelength),
        "continuum_pixels": [int(i) for i in indices],
        "n_pixels": int(resolved.continuum_mask_.size),
        "continuum_sha256": hashlib.sha256(indices.astype("<i8").tobytes()).hexdigest(),
        "normalizer_wavelength": _grid(normalizer.wavelength),
        **{name: getattr(normalizer, name) for name in _NORMALIZER_OPTIONS},
    }


def recipe_or_none(preprocessor: Pipeline) -> dict | None:
    """The recipe of ``preprocessor``, or None when it is not the standard masking ->
    regridding -> normalization Pipeline (a dataset or model then records none)."""
    try:
        return preprocessing_recipe(preprocessor)
    except ValueError:
        return None


def preprocessor_from_recipe(recipe: dict) -> Pipeline:
    """The Pipeline a recipe of :func:`preprocessing_recipe` describes (unfitted).

    Raises
    ------
    ValueError
        Not a recipe of this format, or continuum pixels that do not fit its grid.
    """
    if not isinstance(recipe, dict) or recipe.get("format") != RECIPE_FORMAT:
        raise ValueError(f"not a preprocessing recipe ({RECIPE_FORMAT})")
    try:
        indices = np.asarray(recipe["continuum_pixels"], dtype=np.int64)
        n_pixels = int(recipe["n_pixels"])
        digest = hashlib.sha256(indices.astype("<i8").tobytes()).hexdigest()
        if digest != recipe["continuum_sha256"]:
            raise ValueError("its continuum pixels do not match their checksum")
        if indices.size and (indices.min() < 0 or indices.max() >= n_pixels):
            raise ValueError(f"continuum pixel indices outside 0..{n_pixels - 1}")
        mask = np.zeros(n_pixels, dtype=bool)
        mask[indices] = True
        grid = {key: None if recipe[key] is None else np.asarray(recipe[key], float)
                for key in ("source_wavelength", "target_wavelength", "normalizer_wavelength")}
        options = {name: recipe[name] for name in _NORMALIZER_OPTIONS}
        return make_pipeline(
            BitmaskMasker(bad_bits=tuple(recipe["bad_bits"])),
            Regridder(grid["source_wavelength"], target_wavelength=grid["target_wavelength"]),
            ContinuumNormalizer(mask, wavelength=grid["normalizer_wavelength"], **options))
    except KeyError as exc:
        raise ValueError(f"preprocessing recipe lacks {exc}") from None


def recipe_for_model(model, continuum=None) -> tuple[dict, str]:
    """The preprocessing recipe to apply with ``model``, and where it came from.

    The model's own (stored at training in its provenance) wins; a ``continuum`` file with
    other pixels, which would change it, is refused. A model without one (trained from arrays,
    or the imported reference model) needs ``continuum``: the standard masking and regridding
    with that file's continuum pixels.

    Raises
    ------
    SkcannonError
        ``continuum`` contradicts the model's recipe, or neither is there.
    """
    from skcannon.errors import SkcannonError

    stored = model.provenance_.get("preprocessing")
    if stored:
        if continuum is not None:
            given = preprocessing_recipe(default_preprocessor(continuum))
            if given["continuum_sha256"] != stored.get("continuum_sha256"):
                raise SkcannonError(f"--continuum: {continuum} holds other continuum pixels "
                                    "than the model was trained with; leave it out (the model "
                                    "carries its preprocessing)")
        return stored, "the model's own (stored at training)"
    if continuum is None:
        raise SkcannonError("--continuum: the model does not record its preprocessing; name "
                            "the continuum pixel file its training spectra were normalized with")
    return preprocessing_recipe(default_preprocessor(continuum)), f"standard, {continuum}"
