"""The training-set file: normalized spectra, labels, flags and provenance in one HDF5 file.

Layout (format ``skcannon-dataset``, version 2)::

    /                 attrs: format, format_version, provenance (JSON string), label_columns
                      (JSON list), checksum (SHA-256 of every other attribute and every array)
    /wavelength       (n_pixels,) float64, Angstrom (vacuum)
    /flux             (n_stars, n_pixels) float64, normalized flux
    /ivar             (n_stars, n_pixels) float64, inverse variance (0 = masked)
    /pixmask          (n_stars, n_pixels) int64, APOGEE_PIXMASK | skcannon bits
    /flags            (n_stars,) int64, OR of skcannon's bits over the star's pixels
    /labels/c<i>      (n_stars,) one dataset per table column, in label_columns order

No pickle anywhere: strings are stored as UTF-8, everything else as plain numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from skcannon.errors import BadFileError, LabelError
from skcannon.integrity import read_sealed_hdf5, write_sealed_hdf5
from skcannon.spectra import FLUX, IVAR, MASK, check_spectra, stack_spectra

DATASET_FORMAT = "skcannon-dataset"
DATASET_FORMAT_VERSION = 2
#: Provenance value of "wavelength" when the pixel index stands in for unrecorded wavelengths.
PIXEL_INDEX = "pixel index"


@dataclass
class SpectralDataset:
    """Normalized spectra with their labels.

    The shapes are checked on construction (``ValueError`` naming the array that disagrees).

    Attributes
    ----------
    wavelength : ndarray of shape (n_pixels,)
        Vacuum wavelength, Angstrom (or the pixel index, see :attr:`has_wavelength`).
    flux : ndarray of shape (n_stars, n_pixels)
        Normalized flux.
    ivar : ndarray of shape (n_stars, n_pixels)
        Inverse variance (0 = masked).
    pixmask : ndarray of int64, shape (n_stars, n_pixels)
        APOGEE_PIXMASK and skcannon bits per pixel.
    labels : DataFrame
        n_stars rows (APOGEE_ID, label columns, their errors, SNR, flags ...).
    flags : ndarray of int64, shape (n_stars,)
        OR of skcannon's bits over each star's pixels.
    provenance : dict, default={}
        Where the data came from (JSON-able).
    """

    wavelength: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    pixmask: np.ndarray
    labels: pd.DataFrame
    flags: np.ndarray
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, p = np.shape(self.flux)
        for name in ("ivar", "pixmask"):
            if np.shape(getattr(self, name)) != (n, p):
                raise ValueError(f"{name} has shape {np.shape(getattr(self, name))}; "
                                 f"expected {(n, p)}")
        if np.shape(self.wavelength) != (p,):
            raise ValueError(f"wavelength has shape {np.shape(self.wavelength)}; expected {(p,)}")
        if len(self.labels) != n or np.shape(self.flags) != (n,):
            raise ValueError(f"labels ({len(self.labels)} rows) and flags "
                             f"({np.shape(self.flags)}) must have one entry per star ({n})")

    @classmethod
    def from_spectra(cls, wavelength: np.ndarray, X: np.ndarray, labels: pd.DataFrame, *,
                     flags: np.ndarray | None = None, provenance: dict | None = None
                     ) -> SpectralDataset:
        """A dataset from a spectra array.

        Parameters
        ----------
        wavelength : array_like of shape (n_pixels,)
        X : ndarray of shape (n_stars, 3, n_pixels)
            Flux, inverse variance, bitmask.
        labels : DataFrame
            n_stars rows.
        flags : ndarray of int64, shape (n_stars,), default=None
            None: all 0.
        provenance : dict, default=None
            None: empty.

        Returns
        -------
        SpectralDataset
        """
        X = check_spectra(X, len(wavelength))
        return cls(np.asarray(wavelength, float), X[:, FLUX], X[:, IVAR],
                   X[:, MASK].astype(np.int64), labels,
                   np.zeros(len(X), dtype=np.int64) if flags is None else flags,
                   dict(provenance or {}))

    @property
    def X(self) -> np.ndarray:
        """The spectra as one array, shape (n_stars, 3, n_pixels)."""
        return stack_spectra(self.flux, self.ivar, pixmask=self.pixmask)

    def label_array(self, names) -> np.ndarray:
        """Labels as an array, in the order of ``names`` (non-numbers become NaN).

        Parameters
        ----------
        names : sequence of str of length n_labels
            Label columns.

        Returns
        -------
        ndarray of shape (n_stars, n_labels)

        Raises
        ------
        LabelError
            Naming the columns the dataset lacks.
        """
        missing = [n for n in names if n not in self.labels.columns]
        if missing:
            raise LabelError(f"dataset has no label column(s) {', '.join(missing)} (it has "
                             f"{', '.join(map(str, self.labels.columns))})")
        return self.labels[list(names)].apply(pd.to_numeric, errors="coerce").to_numpy(float)

    @property
    def has_wavelength(self) -> bool:
        """False when the source recorded no wavelengths (the pixel index stands in)."""
        return self.provenance.get("wavelength") != PIXEL_INDEX

    @property
    def ids(self) -> np.ndarray:
        """APOGEE_ID of each star; for arrays without one, ``star_<row>`` (see
        :func:`skcannon.data.open_dataset`)."""
        if "APOGEE_ID" in self.labels:
            return self.labels["APOGEE_ID"].astype(str).to_numpy()
        return np.array([f"star_{i}" for i in range(len(self))])

    def __len__(self) -> int:
        return len(self.flux)

    def subset(self, rows) -> SpectralDataset:
        """The stars at ``rows``.

        Parameters
        ----------
        rows : array_like of int, or of bool with shape (n_stars,)
            Indices or a boolean mask.

        Returns
        -------
        SpectralDataset
            A new dataset (copies of the rows, the same wavelength, a copy of the provenance).
        """
        rows = np.asarray(rows)
        return SpectralDataset(self.wavelength, self.flux[rows], self.ivar[rows],
                               self.pixmask[rows], self.labels.iloc[rows].reset_index(drop=True),
                               self.flags[rows], dict(self.provenance))

    def _content(self) -> tuple[dict, dict[str, np.ndarray]]:
        """The file's attributes and arrays (label columns as ``labels/c<i>``)."""
        attrs = {"format": DATASET_FORMAT, "format_version": DATASET_FORMAT_VERSION,
                 "provenance": json.dumps(self.provenance, sort_keys=True, default=str),
                 "label_columns": json.dumps(list(map(str, self.labels.columns)))}
        arrays = {"wavelength": np.asarray(self.wavelength, float),
                  "flux": np.asarray(self.flux, float), "ivar": np.asarray(self.ivar, float),
                  "pixmask": np.asarray(self.pixmask, np.int64),
                  "flags": np.asarray(self.flags, np.int64)}
        for i, column in enumerate(self.labels.columns):
            values = self.labels[column]
            if values.dtype == object or pd.api.types.is_string_dtype(values):
                arrays[f"labels/c{i}"] = np.array([str(v).encode() for v in values], dtype="S")
            else:
                arrays[f"labels/c{i}"] = values.to_numpy()
        return attrs, arrays

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the dataset to HDF5 atomically, sealed, with a checksum over every attribute
        and array.

        Parameters
        ----------
        path : str or path-like
        overwrite : bool, default=False
            Replace an existing file; False: ``FileExistsError`` when ``path`` exists.

        Returns
        -------
        Path
            ``path``.
        """
        attrs, arrays = self._content()
        return write_sealed_hdf5(path, attrs, arrays, overwrite=overwrite, compress=True)

    @classmethod
    def load(cls, path: str | Path) -> SpectralDataset:
        """Read a dataset written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like

        Returns
        -------
        SpectralDataset

        Raises
        ------
        BadFileError
            Naming the file: foreign, damaged or altered (seal and checksum over every
            attribute and array), or with nonsensical content.
        """
        attrs, arrays = read_sealed_hdf5(path, expected_format=DATASET_FORMAT,
                                         expected_version=DATASET_FORMAT_VERSION,
                                         what="dataset file")
        try:
            return cls._from_content(attrs, arrays)
        except (KeyError, TypeError, ValueError) as exc:      # checksum right, content wrong
            raise BadFileError(path, f"inconsistent dataset content ({exc})") from exc

    @classmethod
    def _from_content(cls, attrs: dict, arrays: dict[str, np.ndarray]) -> SpectralDataset:
        columns = json.loads(attrs["label_columns"])
        expected = {"wavelength", "flux", "ivar", "pixmask", "flags",
                    *(f"labels/c{i}" for i in range(len(columns)))}
        if set(arrays) != expected:
            raise ValueError(f"arrays {sorted(set(arrays) ^ expected)} unexpected or missing")
        table = {}
        for i, column in enumerate(columns):
            data = arrays[f"labels/c{i}"]
            table[column] = [v.decode() for v in data] if data.dtype.kind == "S" else data
        ivar = arrays["ivar"]
        if not np.all(np.isfinite(arrays["wavelength"])) or np.any(~(ivar >= 0)):
            raise ValueError("non-finite wavelengths or negative/NaN inverse variances")
        return cls(wavelength=arrays["wavelength"], flux=arrays["flux"], ivar=ivar,
                   pixmask=arrays["pixmask"], labels=pd.DataFrame(table, columns=columns),
                   flags=arrays["flags"], provenance=json.loads(attrs["provenance"]))
