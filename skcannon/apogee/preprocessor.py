"""APOGEE's preprocessing: the survey-free transformers with APOGEE's bits, grids and chips,
and the recipe of that preprocessing stored with a model.

:func:`apogee_masker`, :func:`apogee_regridder` and :func:`apogee_normalizer` are
:class:`~skcannon.preprocessing.BitmaskMasker`,
:class:`~skcannon.preprocessing.Regridder` and
:class:`~skcannon.preprocessing.ContinuumNormalizer` with APOGEE's defaults
(APOGEE_PIXMASK bits 0-7 and 12; the apStar grid resampled onto the 7214-pixel DR12 aspcapStar
grid; the blue, green and red chips normalized separately); :func:`apogee_preprocessor` chains
them.

A model is only right for spectra prepared exactly as its training spectra were (same masked
bits, same grid, same continuum pixels and basis). :func:`preprocessing_recipe` turns the
preprocessing Pipeline (masking -> regridding -> continuum normalization) into a JSON-able dict -
the continuum pixels themselves, not the name of a file that may change - and
:func:`preprocessor_from_recipe` builds the same Pipeline back, so whoever applies the model
(``skcannon survey``, ``skcannon fit`` on FITS files) cannot mismatch it. The model file's
checksum covers the recipe (it is part of the provenance). A recipe's grids are None where they
are APOGEE's standard ones, and a recipe without ``regions`` (written before regions were a
parameter) means APOGEE's chips.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np
from sklearn.base import clone
from sklearn.pipeline import Pipeline, make_pipeline

from skcannon.apogee.bitmask import DEFAULT_BAD_PIXEL_BITS
from skcannon.apogee.grids import (
    CHIP_WAVELENGTH_RANGES,
    apstar_wavelength,
    aspcap_dr12_wavelength,
    aspcap_dr17_wavelength,
)
from skcannon.preprocessing import BitmaskMasker, ContinuumNormalizer, Regridder

#: Identifies a recipe dict (and its layout version).
RECIPE_FORMAT = "skcannon-preprocessing-1"
#: ContinuumNormalizer parameters stored as they are.
_NORMALIZER_OPTIONS = ("basis", "order", "clip_sigma", "max_iter", "min_pixels")
#: The continuum regions of APOGEE spectra: its three detector chips, (start, stop) Angstrom.
APOGEE_CHIP_REGIONS: tuple[tuple[float, float], ...] = tuple(CHIP_WAVELENGTH_RANGES.values())
#: aspcapStar grids an apStar spectrum can be resampled onto, by name.
APOGEE_TARGET_GRIDS: dict[str, Callable[[], np.ndarray]] = {
    "dr12": aspcap_dr12_wavelength,
    "dr17": aspcap_dr17_wavelength,
}


def apogee_masker(bad_bits: Sequence[int] = DEFAULT_BAD_PIXEL_BITS) -> BitmaskMasker:
    """A :class:`~skcannon.preprocessing.BitmaskMasker` of APOGEE_PIXMASK bits.

    Parameters
    ----------
    bad_bits : sequence of int, default=DEFAULT_BAD_PIXEL_BITS
        APOGEE_PIXMASK bits that make a pixel unusable (default: 0-7 and 12).

    Returns
    -------
    skcannon.preprocessing.BitmaskMasker
    """
    return BitmaskMasker(bad_bits=bad_bits)


def apogee_regridder(target: str | np.ndarray = "dr12") -> Regridder:
    """A :class:`~skcannon.preprocessing.Regridder` from the apStar grid (8575 pixels) onto an
    aspcapStar grid.

    Parameters
    ----------
    target : {"dr12", "dr17"} or array_like of shape (n_target,), default="dr12"
        The 7214-pixel DR12 grid (where the Cannon continuum pixels are defined; an exact pixel
        selection), the 7514-pixel DR13-DR17 grid, or any grid.

    Returns
    -------
    skcannon.preprocessing.Regridder

    Raises
    ------
    ValueError
        An unknown grid name.
    """
    if isinstance(target, str):
        if target not in APOGEE_TARGET_GRIDS:
            raise ValueError(f"target must be one of {sorted(APOGEE_TARGET_GRIDS)} or a grid, "
                             f"got {target!r}")
        target = APOGEE_TARGET_GRIDS[target]()
    return Regridder(apstar_wavelength(), target)


def apogee_normalizer(continuum_pixels, *, wavelength=None,
                      regions=APOGEE_CHIP_REGIONS, **options) -> ContinuumNormalizer:
    """A :class:`~skcannon.preprocessing.ContinuumNormalizer` for APOGEE spectra: per chip, on the
    DR12 grid.

    Parameters
    ----------
    continuum_pixels : path, bool array of shape (n_pixels,), or int index array
        E.g. ``cannon_cont_pixels_apogee.npz`` (529 pixels on the 7214-pixel grid).
    wavelength : array_like of shape (n_pixels,), default=None
        The input grid; None: the 7214-pixel DR12 aspcapStar grid.
    regions : sequence of (start, stop) or None, default=APOGEE_CHIP_REGIONS
        The blue, green and red chips (None: one region over the whole grid).
    **options
        Other :class:`~skcannon.preprocessing.ContinuumNormalizer` parameters (``basis``, ``order``,
        ``clip_sigma``, ``max_iter``, ``min_pixels``).

    Returns
    -------
    skcannon.preprocessing.ContinuumNormalizer
    """
    wavelength = aspcap_dr12_wavelength() if wavelength is None else wavelength
    return ContinuumNormalizer(continuum_pixels, wavelength=wavelength, regions=regions,
                               **options)


def apogee_preprocessor(continuum_pixels, **normalizer_options) -> Pipeline:
    """APOGEE's preprocessing: masking -> regridding apStar onto the 7214-pixel grid ->
    per-chip continuum normalization.

    Parameters
    ----------
    continuum_pixels : path, bool array of shape (7214,), or int index array
        The continuum pixels on the DR12 grid.
    **normalizer_options
        Passed to :func:`apogee_normalizer` (e.g. ``basis``, ``order``, ``regions``).

    Returns
    -------
    Pipeline
        Unfitted steps ``bitmaskmasker``, ``regridder``, ``continuumnormalizer``; it takes
        apStar spectra of shape (n_stars, 3, 8575) and gives (n_stars, 3, 7214).
    """
    return make_pipeline(apogee_masker(), apogee_regridder(),
                         apogee_normalizer(continuum_pixels, **normalizer_options))


#: The preprocessing of the commands and of a recipe with no other: :func:`apogee_preprocessor`.
default_preprocessor = apogee_preprocessor


def _grid(values, standard: Callable[[], np.ndarray]) -> list[float] | None:
    """A grid as a list, or None when it is missing or the ``standard`` one."""
    if values is None:
        return None
    values = np.asarray(values, float)
    default = standard()
    if values.shape == default.shape and np.array_equal(values, default):
        return None
    return [float(v) for v in values]


def _regions(regions) -> list[list[float]] | None:
    return None if regions is None else [[float(v) for v in pair]
                                         for pair in np.asarray(regions, float)]


def preprocessing_recipe(preprocessor: Pipeline) -> dict:
    """The recipe of a masking -> regridding -> continuum-normalization Pipeline.

    Parameters
    ----------
    preprocessor : Pipeline
        Steps :class:`~skcannon.preprocessing.BitmaskMasker`,
        :class:`~skcannon.preprocessing.Regridder`,
        :class:`~skcannon.preprocessing.ContinuumNormalizer` (fitted or not; the normalizer's
        continuum pixels are resolved, a file is read here).

    Returns
    -------
    dict
        ``format``, ``bad_bits``, ``source_wavelength``, ``target_wavelength`` and
        ``normalizer_wavelength`` (None: the standard apStar and 7214-pixel grids),
        ``regions`` (``[start, stop]`` pairs, or None for one region over the grid),
        ``continuum_pixels`` (indices on the target grid), ``n_pixels``, ``continuum_sha256``
        and the normalizer's options.

    Raises
    ------
    ValueError
        Other steps, or a normalizer that cannot be fitted (e.g. no wavelength).
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
        "source_wavelength": _grid(regridder.source_wavelength, apstar_wavelength),
        "target_wavelength": _grid(regridder.target_wavelength, aspcap_dr12_wavelength),
        "continuum_pixels": [int(i) for i in indices],
        "n_pixels": int(resolved.continuum_mask_.size),
        "continuum_sha256": hashlib.sha256(indices.astype("<i8").tobytes()).hexdigest(),
        "normalizer_wavelength": _grid(normalizer.wavelength, aspcap_dr12_wavelength),
        "regions": _regions(normalizer.regions),
        **{name: getattr(normalizer, name) for name in _NORMALIZER_OPTIONS},
    }


def recipe_or_none(preprocessor: Pipeline) -> dict | None:
    """The recipe of ``preprocessor``, or None when it is not the standard masking ->
    regridding -> normalization Pipeline (a dataset or model then records none).

    Parameters
    ----------
    preprocessor : Pipeline

    Returns
    -------
    dict or None
    """
    try:
        return preprocessing_recipe(preprocessor)
    except ValueError:
        return None


def preprocessor_from_recipe(recipe: dict) -> Pipeline:
    """The Pipeline a recipe of :func:`preprocessing_recipe` describes (unfitted).

    Parameters
    ----------
    recipe : dict
        From :func:`preprocessing_recipe` (through JSON or not); None grids are APOGEE's
        standard ones, a missing ``regions`` key APOGEE's chips.

    Returns
    -------
    Pipeline
        :class:`~skcannon.preprocessing.BitmaskMasker` ->
        :class:`~skcannon.preprocessing.Regridder` ->
        :class:`~skcannon.preprocessing.ContinuumNormalizer`.

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
        grid = {key: standard() if recipe[key] is None else np.asarray(recipe[key], float)
                for key, standard in (("source_wavelength", apstar_wavelength),
                                      ("target_wavelength", aspcap_dr12_wavelength),
                                      ("normalizer_wavelength", aspcap_dr12_wavelength))}
        regions = recipe.get("regions", APOGEE_CHIP_REGIONS)    # older recipes: the chips
        if regions is not None:
            regions = tuple(tuple(float(v) for v in pair) for pair in regions)
        options = {name: recipe[name] for name in _NORMALIZER_OPTIONS}
        return make_pipeline(
            apogee_masker(tuple(recipe["bad_bits"])),
            Regridder(grid["source_wavelength"], grid["target_wavelength"]),
            apogee_normalizer(mask, wavelength=grid["normalizer_wavelength"], regions=regions,
                              **options))
    except KeyError as exc:
        raise ValueError(f"preprocessing recipe lacks {exc}") from None


def recipe_for_model(model, continuum=None) -> tuple[dict, str]:
    """The preprocessing recipe to apply with ``model``, and where it came from.

    The model's own (stored at training in its provenance) wins; a ``continuum`` file with
    other pixels, which would change it, is refused. A model without one (trained from arrays,
    or the imported reference model) needs ``continuum``: the standard masking and regridding
    with that file's continuum pixels.

    Parameters
    ----------
    model : skcannon.Cannon
        A fitted model (its ``provenance_`` is read).
    continuum : path or None, default=None
        A continuum pixel file.

    Returns
    -------
    recipe : dict
    source : str
        Where the recipe came from, in words.

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
