"""Already-normalized labelled spectra of any length, from an npz or HDF5 file of arrays.

The file holds ``flux`` (n_stars, n_pixels), its uncertainties as ``flux_err`` (or ``ivar``),
optionally ``wavelength`` (n_pixels,), and one 1-D array (n_stars,) per label (e.g. ``TEFF``,
``LOGG``, ``PARAM_M_H``); other 1-D arrays (ids, indices) come along as columns. Errors at or
above ``bad_error`` (or non-finite) mark bad pixels (inverse variance 0). Nothing is executed on
loading (``allow_pickle=False``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from skcannon.errors import BadFileError
from skcannon.spectra import stack_spectra

#: Flux errors at or above this mark bad pixels (normalized flux units; the convention of
#: the real labelled set in ../shared and of other Cannon test sets).
BAD_ERROR = 0.5


@dataclass
class LabelledArrays:
    """Labelled spectra read from arrays.

    Attributes
    ----------
    table : DataFrame (n_stars rows): labels and other per-star columns
    X : ndarray, shape (n_stars, 3, n_pixels)  flux, inverse variance, bitmask (0)
    wavelength : ndarray (n_pixels,) or None
    source : str  the file
    """

    table: pd.DataFrame
    X: np.ndarray
    wavelength: np.ndarray | None
    source: str


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    import h5py

    with h5py.File(path, "r") as h5:
        return {key: h5[key][()] for key in h5 if isinstance(h5[key], h5py.Dataset)}


def load_labelled_arrays(path: str | Path, *, bad_error: float = BAD_ERROR) -> LabelledArrays:
    """Read labelled spectra of any length (see the module docstring).

    Raises
    ------
    BadFileError
        Naming the file: unreadable, no ``flux``, no ``flux_err``/``ivar``, shapes that disagree.
    """
    path = Path(path)
    if not path.is_file():
        raise BadFileError(path, "no such file")
    try:
        arrays = _read_arrays(path)
    except Exception as exc:
        raise BadFileError(path, f"cannot be read as npz/HDF5 arrays ({type(exc).__name__}: "
                                 f"{exc})") from exc
    flux = arrays.pop("flux", None)
    if flux is None or np.ndim(flux) != 2 or not np.issubdtype(flux.dtype, np.number):
        raise BadFileError(path, "needs a numeric 2-D array 'flux' (n_stars, n_pixels)")
    flux = np.asarray(flux, float)
    if "ivar" in arrays:
        ivar = np.asarray(arrays.pop("ivar"), float)
        arrays.pop("flux_err", None)
    elif "flux_err" in arrays:
        error = np.asarray(arrays.pop("flux_err"), float)
        bad = ~np.isfinite(error) | (error >= bad_error) | (error <= 0)
        ivar = np.where(bad, 0.0, 1.0 / np.where(bad, 1.0, error) ** 2)
    else:
        raise BadFileError(path, "needs 'flux_err' or 'ivar' beside 'flux'")
    if ivar.shape != flux.shape:
        raise BadFileError(path, f"flux {flux.shape} and its errors {ivar.shape} differ in shape")
    wavelength = arrays.pop("wavelength", None)
    if wavelength is not None and np.shape(wavelength) != (flux.shape[1],):
        raise BadFileError(path, f"wavelength has shape {np.shape(wavelength)}; the spectra "
                                 f"have {flux.shape[1]} pixels")
    columns = {key: value for key, value in arrays.items()
               if np.ndim(value) == 1 and len(value) == flux.shape[0]}
    table = pd.DataFrame({key: (value.astype(str) if value.dtype.kind in "SU" else value)
                          for key, value in columns.items()})
    return LabelledArrays(table=table, X=stack_spectra(flux, ivar), wavelength=wavelength,
                          source=str(path))
