"""Read aspcapStar files: ASPCAP's normalized spectrum and its labels, failures decoded.

Layout (DR13 ``aspcapStar-r6-l30e.2-<APOGEE_ID>.fits``; DR14-DR17 keep HDUs 1-4): HDU 1 the
normalized flux, HDU 2 its uncertainty, HDU 3 ASPCAP's best-fit model, all 1-D on the apStar
log10 grid (CRVAL1/CDELT1 in HDU 1); HDU 4 a one-row table with PARAM, FPARAM, ASPCAPFLAG, SNR,
FIELD, APOGEE_ID ... ASPCAP writes -9999 where a fit failed; the flags say why.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from skcannon.apogee.bitmask import ASPCAPFLAG_BITS, decode_flags
from skcannon.apogee.constants import (
    ASPCAP_BAD_ERROR,
    ASPCAP_HDU_ERROR,
    ASPCAP_HDU_FLUX,
    ASPCAP_HDU_MODEL,
    ASPCAP_HDU_TABLE,
    ASPCAP_NULL_THRESHOLD,
    ASPCAP_PARAM_INDEX,
)
from skcannon.apogee.fits_size import check_fits_length, read_file_bytes
from skcannon.apogee.reader import apogee_id_from_name, apstar_grid_from_header
from skcannon.errors import BadFileError

#: ASPCAPFLAG bits that mean ASPCAP's labels of the star are not to be used (DR13-DR17).
ASPCAP_FAILURE_FLAGS = ("STAR_BAD", "NO_ASPCAP_RESULT")


@dataclass(frozen=True)
class AspcapStarSpectrum:
    """ASPCAP's normalized spectrum of one star and its labels.

    Attributes
    ----------
    apogee_id, field : str
    snr : float
    wavelength : ndarray, shape (8575,)  Angstrom, the apStar grid
    flux, error, model_flux : ndarray, shape (8575,)
        Normalized flux, its uncertainty and ASPCAP's best-fit model spectrum.
    ivar : ndarray, shape (8575,)
        Inverse variance, 0 where the pixel is unusable (error >= ASPCAP_BAD_ERROR,
        non-finite, or flux <= 0).
    param, fparam : dict of str -> float
        Calibrated (PARAM) and spectroscopic (FPARAM) TEFF, LOGG, M_H, ALPHA_M; NaN where ASPCAP
        wrote its null (-9999).
    aspcapflag : int
    path, sha256 : str
    """

    apogee_id: str
    field: str
    snr: float
    wavelength: np.ndarray
    flux: np.ndarray
    error: np.ndarray
    model_flux: np.ndarray
    ivar: np.ndarray
    param: dict
    fparam: dict
    aspcapflag: int
    path: str = ""
    sha256: str = ""

    @property
    def flag_names(self) -> list[str]:
        """The ASPCAPFLAG bits set, by name (lowest bit first)."""
        return decode_flags(self.aspcapflag, ASPCAPFLAG_BITS)

    @property
    def null_labels(self) -> list[str]:
        """The PARAM labels ASPCAP left at its null value."""
        return [name for name, value in self.param.items() if not np.isfinite(value)]

    @property
    def failed(self) -> bool:
        """ASPCAP's labels are unusable: a null PARAM label or a failure flag set."""
        return bool(self.null_labels) or any(f in ASPCAP_FAILURE_FLAGS for f in self.flag_names)

    @property
    def problem(self) -> str:
        """What is wrong with ASPCAP's labels, in words ("" when nothing)."""
        parts = []
        if self.null_labels:
            parts.append(f"PARAM null (-9999) for {', '.join(self.null_labels)}")
        bad = [f for f in self.flag_names if f.endswith("_BAD") or f in ASPCAP_FAILURE_FLAGS]
        if bad:
            parts.append(f"ASPCAPFLAG {', '.join(bad)}")
        return "; ".join(parts)


def _labels(vector: np.ndarray) -> dict[str, float]:
    values = {name: float(vector[i]) for name, i in ASPCAP_PARAM_INDEX.items()}
    return {name: (np.nan if not np.isfinite(v) or v <= ASPCAP_NULL_THRESHOLD else v)
            for name, v in values.items()}


def _one_dimensional(hdul, hdu: int, name: str) -> np.ndarray:
    data = hdul[hdu].data
    if data is None or np.ndim(data) != 1:
        raise BadFileError(name, f"HDU {hdu} is not a 1-D spectrum; an aspcapStar file has "
                                 "the normalized flux, error and model in HDUs 1-3")
    return np.asarray(data, dtype=float)


def parse_aspcapstar(data: bytes, path: str | Path, *, digest: bool = True
                     ) -> AspcapStarSpectrum:
    """An :class:`AspcapStarSpectrum` from the bytes of the aspcapStar file named ``path``
    (its SHA-256 recorded unless ``digest`` is False).

    Raises
    ------
    BadFileError
        Naming the file: not FITS, truncated, not the aspcapStar layout, or off the apStar grid.
    """
    from astropy.io import fits

    name = str(path)
    check_fits_length(data, name)   # truncation, checked without warnings (thread-safe)
    try:
        with fits.open(io.BytesIO(data), memmap=False) as hdul:
            if len(hdul) <= ASPCAP_HDU_TABLE or not isinstance(
                    hdul[ASPCAP_HDU_TABLE], fits.BinTableHDU):
                raise BadFileError(name, "is not an aspcapStar file (needs HDUs 1-3 spectra "
                                         "and HDU 4 the ASPCAP table)")
            flux, error, model = (_one_dimensional(hdul, k, name) for k in
                                  (ASPCAP_HDU_FLUX, ASPCAP_HDU_ERROR, ASPCAP_HDU_MODEL))
            header = hdul[ASPCAP_HDU_FLUX].header
            grid = (header.get("CRVAL1"), header.get("CDELT1"))
            table = hdul[ASPCAP_HDU_TABLE].data
            missing = {"PARAM", "FPARAM", "ASPCAPFLAG"} - set(table.names)
            if missing or len(table) != 1:
                raise BadFileError(name, f"ASPCAP table lacks {', '.join(sorted(missing))}"
                                   if missing else f"ASPCAP table has {len(table)} rows")
            row = {key: np.array(table[key][0]) for key in table.names
                   if key in ("PARAM", "FPARAM", "ASPCAPFLAG", "SNR", "FIELD", "APOGEE_ID")}
    except BadFileError:
        raise
    except Exception as exc:  # astropy raises OSError, ValueError, TypeError... on corrupt files
        raise BadFileError(name, f"cannot be read as FITS ({type(exc).__name__}: {exc})") from exc
    if not (flux.shape == error.shape == model.shape):
        raise BadFileError(name, f"flux {flux.shape}, error {error.shape} and model "
                                 f"{model.shape} differ in length")
    wavelength = apstar_grid_from_header(name, *grid, flux.size)
    usable = (np.isfinite(flux) & (flux > 0) & np.isfinite(error) & (error > 0)
              & (error < ASPCAP_BAD_ERROR))
    ivar = np.zeros_like(flux)
    np.divide(1.0, error ** 2, out=ivar, where=usable)
    return AspcapStarSpectrum(
        apogee_id=str(row.get("APOGEE_ID", "")).strip() or apogee_id_from_name(Path(name).name),
        field=str(row.get("FIELD", "")).strip(), snr=float(row.get("SNR", np.nan)),
        wavelength=wavelength, flux=flux, error=error, model_flux=model, ivar=ivar,
        param=_labels(row["PARAM"]), fparam=_labels(row["FPARAM"]),
        aspcapflag=int(row["ASPCAPFLAG"]), path=name,
        sha256=hashlib.sha256(data).hexdigest() if digest else "")


def read_aspcapstar(path: str | Path) -> AspcapStarSpectrum:
    """Read an aspcapStar file (once, as a whole); see :func:`parse_aspcapstar`.

    Parameters
    ----------
    path : str or Path
        The aspcapStar FITS file.

    Returns
    -------
    AspcapStarSpectrum
        The normalized flux, error, ASPCAP model and inverse variance, each of shape (8575,),
        on the apStar wavelength grid, with PARAM/FPARAM labels (NaN where ASPCAP wrote its
        null), ASPCAPFLAG, the file's path and its SHA-256.

    Raises
    ------
    BadFileError
        Naming the file: missing or unreadable, not FITS, truncated, not the aspcapStar layout,
        or off the apStar grid.
    """
    return parse_aspcapstar(read_file_bytes(path), path)


def aspcap_label_table(spectra) -> pd.DataFrame:
    """ASPCAP's labels of read aspcapStar spectra, one row each, failures reported.

    Parameters
    ----------
    spectra : iterable of AspcapStarSpectrum
        Spectra from :func:`read_aspcapstar` (or :func:`parse_aspcapstar`).

    Returns
    -------
    DataFrame of shape (n_spectra, 11)
        One row per spectrum, in input order. Columns: APOGEE_ID, FIELD, SNR, TEFF, LOGG, M_H,
        ALPHA_M (PARAM; NaN where null), ASPCAPFLAG, ASPCAPFLAG_NAMES (the set flags' names,
        comma-separated), ASPCAP_FAILED (bool: a null label or a failure flag) and
        ASPCAP_PROBLEM (what is wrong, in words; "" when nothing). Empty, without columns,
        when ``spectra`` is empty.
    """
    rows = []
    for spectrum in spectra:
        rows.append({"APOGEE_ID": spectrum.apogee_id, "FIELD": spectrum.field,
                     "SNR": spectrum.snr, **spectrum.param, "ASPCAPFLAG": spectrum.aspcapflag,
                     "ASPCAPFLAG_NAMES": ",".join(spectrum.flag_names),
                     "ASPCAP_FAILED": spectrum.failed, "ASPCAP_PROBLEM": spectrum.problem})
    return pd.DataFrame(rows)
