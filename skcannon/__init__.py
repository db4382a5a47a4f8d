"""skcannon: The Cannon (Ness et al. 2015) for APOGEE spectra, as scikit-learn estimators."""

from skcannon._version import __version__
from skcannon.apogee import (
    ApStarSpectrum,
    QualityCuts,
    apogee_preprocessor,
    download_apstar,
    read_apstar,
    read_catalog,
    select_giants,
)
from skcannon.apogee.reference import load_reference_model
from skcannon.data.dataset import SpectralDataset
from skcannon.errors import BadFileError, CatalogError, DownloadError, SkcannonError
from skcannon.model import Cannon, CannonRegressor
from skcannon.persistence import load, save
from skcannon.preprocessing import BitmaskMasker, ContinuumNormalizer, Regridder
from skcannon.spectra import stack_spectra

__all__ = [
    "__version__",
    "ApStarSpectrum", "QualityCuts", "download_apstar", "read_apstar", "read_catalog",
    "select_giants", "apogee_preprocessor",
    "BitmaskMasker", "ContinuumNormalizer", "Regridder", "stack_spectra", "SpectralDataset",
    "Cannon", "CannonRegressor", "load_reference_model", "save", "load",
    "BadFileError", "CatalogError", "DownloadError", "SkcannonError",
]
