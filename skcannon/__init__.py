"""skcannon: The Cannon (Ness et al. 2015) for APOGEE spectra, as scikit-learn estimators."""

from skcannon._version import __version__
from skcannon.apogee import (
    ApStarSpectrum,
    QualityCuts,
    download_apstar,
    read_apstar,
    read_catalog,
    select_giants,
)
from skcannon.errors import BadFileError, CatalogError, DownloadError, SkcannonError

__all__ = [
    "__version__",
    "ApStarSpectrum", "QualityCuts", "download_apstar", "read_apstar", "read_catalog",
    "select_giants",
    "BadFileError", "CatalogError", "DownloadError", "SkcannonError",
]
