"""Already-normalized labelled spectra of any length, from an npz or HDF5 file of arrays.

The file holds ``flux`` (n_stars, n_pixels) (or ``spectra``; ``spectrum`` (n_pixels,) for one
star), its uncertainties as ``flux_err`` (or ``spec_errs``/``spec_err``/``error``, or ``ivar``),
optionally ``wavelength`` (n_pixels,), and one 1-D array (n_stars,) per label (e.g. ``TEFF``,
``LOGG``, ``PARAM_M_H``); other 1-D arrays (ids, indices) come along as columns. Any other
array (a label of the wrong length, a 2-D label) is refused, as is integer flux. Errors at or
above ``bad_error`` (or non-finite) mark bad pixels (inverse variance 0). Nothing is executed on
loading (``allow_pickle=False``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from skcannon.data.dataset import PIXEL_INDEX, SpectralDataset
from skcannon.errors import BadFileError
from skcannon.integrity import SEAL_MAGIC
from skcannon.spectra import stack_spectra

#: Flux errors at or above this mark bad pixels (normalized flux units; the convention of
#: the real labelled set in ../shared and of other Cannon test sets).
BAD_ERROR = 0.5


@dataclass
class LabelledArrays:
    """Labelled spectra read from arrays.

    Attributes
    ----------
    table : DataFrame
        n_stars rows: labels and the file's other per-star columns.
    X : ndarray of shape (n_stars, 3, n_pixels)
        Flux, inverse variance, bitmask (0).
    wavelength : ndarray of shape (n_pixels,) or None
        None when the file has no ``wavelength`` array.
    source : str
        The file.
    """

    table: pd.DataFrame
    X: np.ndarray
    wavelength: np.ndarray | None
    source: str


#: Names of the flux array, first found wins (skcannon/Cannon test sets, The Payne's files).
FLUX_KEYS = ("flux", "spectra", "spectrum")
#: Names of the flux-uncertainty array.
ERROR_KEYS = ("flux_err", "spec_errs", "spec_err", "error")


def _pop_first(arrays: dict[str, np.ndarray], keys: tuple[str, ...]) -> np.ndarray | None:
    """Remove and return the first of ``keys`` in ``arrays`` (the others too); None if none."""
    found = [arrays.pop(key) for key in keys if key in arrays]
    return found[0] if found else None


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    import h5py

    with h5py.File(path, "r") as h5:
        return {key: h5[key][()] for key in h5 if isinstance(h5[key], h5py.Dataset)}


def load_labelled_arrays(path: str | Path, *, bad_error: float = BAD_ERROR) -> LabelledArrays:
    """Read labelled spectra of any length (see the module docstring).

    Parameters
    ----------
    path : str or path-like
        An npz or HDF5 file of arrays.
    bad_error : float, default=BAD_ERROR
        Flux errors at or above this (0.5), non-finite or not positive mark bad pixels
        (inverse variance 0); not used when the file holds ``ivar``.

    Returns
    -------
    LabelledArrays

    Raises
    ------
    BadFileError
        Naming the file: unreadable, no ``flux``, flux stored as integers, no
        ``flux_err``/``ivar``, shapes that disagree (also a label or other array without one
        value per star).
    """
    path = Path(path)
    if not path.is_file():
        raise BadFileError(path, "no such file")
    try:
        arrays = _read_arrays(path)
    except Exception as exc:
        raise BadFileError(path, f"cannot be read as npz/HDF5 arrays ({type(exc).__name__}: "
                                 f"{exc})") from exc
    flux = _pop_first(arrays, FLUX_KEYS)
    if flux is None or np.ndim(flux) not in (1, 2) or not np.issubdtype(flux.dtype, np.number):
        raise BadFileError(path, f"needs a numeric array of spectra named {' or '.join(FLUX_KEYS)}"
                                 " (n_stars, n_pixels), or one spectrum (n_pixels,)")
    if flux.dtype.kind in "biu":
        raise BadFileError(path, f"the flux is stored as {flux.dtype}: normalized flux is a "
                                 "fraction of the continuum, stored as floating point (was "
                                 "it truncated to integers?)")
    flux = np.atleast_2d(np.asarray(flux, float))
    error = _pop_first(arrays, ERROR_KEYS)
    ivar = arrays.pop("ivar", None)
    if ivar is not None:
        ivar = np.atleast_2d(np.asarray(ivar, float))
    elif error is not None:
        error = np.atleast_2d(np.asarray(error, float))
        bad = ~np.isfinite(error) | (error >= bad_error) | (error <= 0)
        ivar = np.where(bad, 0.0, 1.0 / np.where(bad, 1.0, error) ** 2)
    else:
        raise BadFileError(path, f"needs {' or '.join(ERROR_KEYS)} or 'ivar' beside the flux")
    if ivar.shape != flux.shape:
        raise BadFileError(path, f"flux {flux.shape} and its errors {ivar.shape} differ in shape")
    wavelength = arrays.pop("wavelength", None)
    if wavelength is not None and np.shape(wavelength) != (flux.shape[1],):
        raise BadFileError(path, f"wavelength has shape {np.shape(wavelength)}; the spectra "
                                 f"have {flux.shape[1]} pixels")
    columns = _star_columns(path, arrays, flux.shape[0])
    table = pd.DataFrame({key: (value.astype(str) if value.dtype.kind in "SU" else value)
                          for key, value in columns.items()}, index=range(flux.shape[0]))
    return LabelledArrays(table=table, X=stack_spectra(flux, ivar), wavelength=wavelength,
                          source=str(path))


def _star_columns(path: Path, arrays: dict[str, np.ndarray], n_stars: int
                  ) -> dict[str, np.ndarray]:
    """The file's remaining arrays as per-star columns: each must hold one value per star
    (shape (n_stars,); a scalar for a one-star file), else a BadFileError naming it - a label
    of the wrong length or shape is never silently dropped."""
    columns = {}
    for key, value in arrays.items():
        value = np.asarray(value)
        if value.ndim == 0 and n_stars == 1:
            value = value.reshape(1)
        if value.shape != (n_stars,):
            raise BadFileError(path, f"array {key!r} has shape {value.shape}; beside "
                                     f"{n_stars} spectra every other array (labels, ids) "
                                     f"must hold one value per star, shape ({n_stars},)")
        columns[key] = value
    return columns


def _is_dataset_file(path: Path) -> bool:
    """True for a file skcannon sealed (a dataset or another skcannon file: then
    :meth:`SpectralDataset.load` names what it is), or one that is not HDF5/npz at all."""
    with open(path, "rb") as handle:
        start = handle.read(len(SEAL_MAGIC))
    if start == SEAL_MAGIC:
        return True
    return not (start.startswith(b"\x89HDF") or start.startswith(b"PK"))


def open_dataset(path: str | Path, *, bad_error: float = BAD_ERROR) -> SpectralDataset:
    """A :class:`SpectralDataset` from a dataset file or from an npz/HDF5 file of arrays.

    Arrays (see :func:`load_labelled_arrays`) can have any number of pixels; without a
    ``wavelength`` array the pixel index stands in for it (recorded in the provenance), and
    without an ``APOGEE_ID`` column stars are named ``star_<row>``.

    Parameters
    ----------
    path : str or path-like
        A dataset file (:meth:`SpectralDataset.save`) or an npz/HDF5 file of arrays.
    bad_error : float, default=BAD_ERROR
        For arrays: flux errors at or above this (0.5) mark bad pixels.

    Returns
    -------
    SpectralDataset

    Raises
    ------
    BadFileError
        Naming the file, when it is neither.
    """
    path = Path(path)
    if not path.is_file():
        raise BadFileError(path, "no such file")
    if _is_dataset_file(path):
        return SpectralDataset.load(path)
    arrays = load_labelled_arrays(path, bad_error=bad_error)
    n_pixels = arrays.X.shape[-1]
    wavelength = arrays.wavelength
    provenance = {"arrays": arrays.source,
                  "wavelength": "from the file" if wavelength is not None else PIXEL_INDEX}
    if wavelength is None:
        wavelength = np.arange(n_pixels, dtype=float)
    return SpectralDataset.from_spectra(wavelength, arrays.X, arrays.table,
                                        provenance=provenance)
