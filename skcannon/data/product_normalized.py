"""The ``normalized`` product: already-normalized arrays in an npz/HDF5 file
(``spectrum``/``spectra``/``flux`` and their errors, see :mod:`skcannon.data.arrays`), on the
7214- or 7514-pixel gap-removed grid, the apStar grid, or a grid given as a ``wavelength``
array.

Identified by its suffix (``.npz``, ``.h5``, ``.hdf5``), which it owns.
"""

from __future__ import annotations

import hashlib

import numpy as np

from skcannon.apogee.constants import APSTAR_N_PIXELS
from skcannon.apogee.grids import apstar_wavelength, aspcap_dr12_wavelength, aspcap_dr17_wavelength
from skcannon.apogee.reader import apogee_id_from_name
from skcannon.data.arrays import load_labelled_arrays
from skcannon.data.registry import ProductSpectra, SpectrumFile, register_product
from skcannon.errors import BadFileError

#: The product's name.
NAME = "normalized"
#: File suffixes of array files.
ARRAY_SUFFIXES = (".npz", ".h5", ".hdf5")
#: Pixel counts of the known grids -> the function giving that grid (Angstrom).
KNOWN_GRIDS = {APSTAR_N_PIXELS: apstar_wavelength, 7214: aspcap_dr12_wavelength,
               7514: aspcap_dr17_wavelength}
#: Columns of an arrays file's table that may hold the S/N, in order of preference.
SNR_COLUMNS = ("snrs", "SNR", "snr")


def grid_for(n_pixels: int, name: str) -> np.ndarray:
    """The APOGEE grid of ``n_pixels`` pixels (Angstrom), for a file ``name`` without one.

    Raises
    ------
    BadFileError
        Naming the file, when ``n_pixels`` is not one of the APOGEE grids'.
    """
    if n_pixels not in KNOWN_GRIDS:
        raise BadFileError(name, f"spectra of {n_pixels} pixels without a 'wavelength' array: "
                                 "not one of the APOGEE grids (8575, 7214 or 7514 pixels)")
    return KNOWN_GRIDS[n_pixels]()


def identify_normalized(file: SpectrumFile) -> bool:
    """True for an array file (its suffix one of :data:`ARRAY_SUFFIXES`).

    Parameters
    ----------
    file : SpectrumFile

    Returns
    -------
    bool
    """
    return file.suffix in ARRAY_SUFFIXES


def read_normalized(file: SpectrumFile, digest: bool) -> ProductSpectra:
    """The spectra of an arrays file (its SHA-256 recorded when ``digest``).

    Parameters
    ----------
    file : SpectrumFile
    digest : bool

    Returns
    -------
    ProductSpectra
    """
    path = file.path
    arrays = load_labelled_arrays(path)
    wavelength = (arrays.wavelength if arrays.wavelength is not None
                  else grid_for(arrays.X.shape[-1], str(path)))
    n = arrays.X.shape[0]
    ids = (list(arrays.table["APOGEE_ID"].astype(str)) if "APOGEE_ID" in arrays.table
           else [apogee_id_from_name(path.name)] * n)
    snr_column = next((c for c in SNR_COLUMNS if c in arrays.table), None)
    snr = (arrays.table[snr_column].to_numpy(float) if snr_column else np.full(n, np.nan))
    return ProductSpectra(str(path), NAME, ids, snr, np.asarray(wavelength, float),
                          arrays.X, True,
                          hashlib.sha256(path.read_bytes()).hexdigest() if digest else "")


register_product(NAME, identify=identify_normalized, read=read_normalized, normalized=True,
                 suffixes=ARRAY_SUFFIXES)
