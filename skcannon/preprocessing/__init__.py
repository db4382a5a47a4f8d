"""Preprocessing transformers: bad-pixel masking, regridding, continuum normalization.

Compose them as ``make_pipeline(BitmaskMasker(), Regridder(), ContinuumNormalizer(...), model)``.
All take and return spectra arrays of shape (n_stars, 3, n_pixels) (see :mod:`skcannon.spectra`).
"""

from skcannon.preprocessing.continuum import ContinuumNormalizer, load_continuum_pixels
from skcannon.preprocessing.masking import BitmaskMasker
from skcannon.preprocessing.regrid import Regridder

__all__ = ["BitmaskMasker", "ContinuumNormalizer", "Regridder", "load_continuum_pixels"]
