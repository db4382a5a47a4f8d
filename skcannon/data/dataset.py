"""The training-set file: normalized spectra, labels, flags and provenance in one HDF5 file.

Layout (format ``skcannon-dataset``, version 1)::

    /                 attrs: format, format_version, provenance (JSON string)
    /wavelength       (n_pixels,) float64, Angstrom (vacuum)
    /flux             (n_stars, n_pixels) float64, normalized flux
    /ivar             (n_stars, n_pixels) float64, inverse variance (0 = masked)
    /pixmask          (n_stars, n_pixels) int64, APOGEE_PIXMASK | skcannon bits
    /flags            (n_stars,) int64, OR of skcannon's bits over the star's pixels
    /labels/<column>  (n_stars,) one dataset per table column; attrs["columns"] gives the order

No pickle anywhere: strings are stored as UTF-8, everything else as plain numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from skcannon.errors import BadFileError
from skcannon.integrity import atomic_write, check_format
from skcannon.spectra import FLUX, IVAR, MASK, check_spectra, stack_spectra

DATASET_FORMAT = "skcannon-dataset"
DATASET_FORMAT_VERSION = 1
#: Provenance value of "wavelength" when the pixel index stands in for unrecorded wavelengths.
PIXEL_INDEX = "pixel index"


@dataclass
class SpectralDataset:
    """Normalized spectra with their labels.

    Attributes
    ----------
    wavelength : ndarray, shape (n_pixels,)
    flux, ivar : ndarray, shape (n_stars, n_pixels)
    pixmask : ndarray of int64, shape (n_stars, n_pixels)
    labels : DataFrame, n_stars rows (APOGEE_ID, label columns, their errors, SNR, flags...)
    flags : ndarray of int64, shape (n_stars,)
    provenance : dict
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
        """A dataset from a spectra array X, shape (n_stars, 3, n_pixels) (flags default 0)."""
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
        """Labels as an array, shape (n_stars, n_labels), in the order of ``names``."""
        missing = [n for n in names if n not in self.labels.columns]
        if missing:
            raise KeyError(f"dataset has no label column(s) {', '.join(missing)}")
        return self.labels[list(names)].to_numpy(dtype=float)

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
        """The stars at ``rows`` (indices or a boolean mask)."""
        rows = np.asarray(rows)
        return SpectralDataset(self.wavelength, self.flux[rows], self.ivar[rows],
                               self.pixmask[rows], self.labels.iloc[rows].reset_index(drop=True),
                               self.flags[rows], dict(self.provenance))

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the dataset to HDF5 atomically (refuses to overwrite unless ``overwrite``)."""
        import h5py

        path = Path(path)
        with atomic_write(path, overwrite=overwrite) as tmp, \
                h5py.File(tmp, "w", track_order=True) as h5:
            h5.attrs["format"] = DATASET_FORMAT
            h5.attrs["format_version"] = DATASET_FORMAT_VERSION
            h5.attrs["provenance"] = json.dumps(self.provenance, sort_keys=True, default=str)
            h5.create_dataset("wavelength", data=np.asarray(self.wavelength, float))
            for name in ("flux", "ivar"):
                h5.create_dataset(name, data=np.asarray(getattr(self, name), float),
                                  compression="gzip", shuffle=True)
            h5.create_dataset("pixmask", data=np.asarray(self.pixmask, np.int64),
                              compression="gzip", shuffle=True)
            h5.create_dataset("flags", data=np.asarray(self.flags, np.int64))
            group = h5.create_group("labels")
            group.attrs["columns"] = json.dumps(list(map(str, self.labels.columns)))
            for i, column in enumerate(self.labels.columns):
                values = self.labels[column]
                if values.dtype == object or pd.api.types.is_string_dtype(values):
                    data = np.array([str(v).encode() for v in values], dtype="S")
                else:
                    data = values.to_numpy()
                group.create_dataset(f"c{i}", data=data)
        return path

    @classmethod
    def load(cls, path: str | Path) -> SpectralDataset:
        """Read a dataset written by :meth:`save`; clear errors for foreign or damaged files."""
        import h5py

        path = Path(path)
        if not path.is_file():
            raise BadFileError(path, "no such dataset file")
        try:
            with h5py.File(path, "r") as h5:
                check_format(path, h5.attrs, expected_format=DATASET_FORMAT,
                             expected_version=DATASET_FORMAT_VERSION, what="dataset")
                columns = json.loads(h5["labels"].attrs["columns"])
                table = {}
                for i, column in enumerate(columns):
                    data = h5["labels"][f"c{i}"][()]
                    table[column] = ([v.decode() for v in data] if data.dtype.kind == "S"
                                     else data)
                return cls(
                    wavelength=h5["wavelength"][()], flux=h5["flux"][()], ivar=h5["ivar"][()],
                    pixmask=h5["pixmask"][()], labels=pd.DataFrame(table, columns=columns),
                    flags=h5["flags"][()], provenance=json.loads(h5.attrs["provenance"]),
                )
        except BadFileError:
            raise
        except Exception as exc:
            raise BadFileError(path, f"cannot be read as a dataset ({type(exc).__name__}: "
                                     f"{exc})") from exc
