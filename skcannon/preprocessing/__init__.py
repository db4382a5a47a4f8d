"""Preprocessing transformers: bad-pixel masking, regridding, continuum normalization.

Survey-free: bad bits, wavelength grids and continuum regions are parameters (nothing here knows
APOGEE; :mod:`skcannon.apogee.preprocessor` supplies its defaults). Compose them as
``make_pipeline(BitmaskMasker(bits), Regridder(source, target),
ContinuumNormalizer(pixels, wavelength=target, regions=...), model)``. All take and return spectra
arrays of shape (n_stars, 3, n_pixels) (see :mod:`skcannon.spectra`). Continuum bases are
registered by name in :mod:`skcannon.preprocessing.bases`.
"""

from skcannon.preprocessing.bases import (
    CONTINUUM_BASES,
    register_continuum_basis,
    unregister_continuum_basis,
)
from skcannon.preprocessing.continuum import ContinuumNormalizer, load_continuum_pixels
from skcannon.preprocessing.masking import BitmaskMasker
from skcannon.preprocessing.regrid import Regridder

__all__ = ["CONTINUUM_BASES", "BitmaskMasker", "ContinuumNormalizer", "Regridder",
           "load_continuum_pixels", "register_continuum_basis", "unregister_continuum_basis"]
