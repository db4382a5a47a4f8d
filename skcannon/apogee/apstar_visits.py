"""The individual visits of a DR17 apStar file (rows 2+ of HDUs 1-3 when NVISITS > 1; rows 0
and 1 are the two combinations), as a spectra array for :meth:`Cannon.infer_visits`.

The visits in an apStar file are already shifted to the star's rest frame (each by its own
VHELIO), on the combined spectrum's grid: a joint fit's per-visit RVs are then residuals about
that frame; the header's ``VHELIOn``, ``VERRn`` and ``SNRVISn`` give each visit's own
heliocentric velocity, its error and S/N. A single-visit file (NVISITS = 1, or the older 1-D
layout) has one visit: its combined row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skcannon.apogee.bitmask import DEFAULT_BAD_PIXEL_BITS
from skcannon.apogee.constants import APSTAR_N_PIXELS, HDU_ERROR, HDU_FLUX, HDU_PIXMASK
from skcannon.apogee.fits_size import card_text, check_fits_length, image_array, read_file_bytes
from skcannon.apogee.reader import inverse_variance, parse_apstar
from skcannon.errors import BadFileError
from skcannon.spectra import stack_spectra

#: Rows of a multi-visit DR17 apStar HDU before the first visit (the two combinations).
COMBINED_ROWS = 2


@dataclass(frozen=True)
class ApStarVisits:
    """The visits of one star from an apStar file.

    Attributes
    ----------
    apogee_id : str
    path : str
    wavelength : ndarray, shape (8575,)
    X : ndarray, shape (n_visits, 3, 8575)
        Flux, inverse variance (0 at bad pixels) and APOGEE_PIXMASK of each visit
        (:func:`skcannon.spectra.stack_spectra`), in the star's rest frame.
    vhelio, vhelio_err, snr : ndarray, shape (n_visits,)
        Each visit's heliocentric velocity and its error (km/s) and S/N, from the header
        (``VHELIOn``, ``VERRn``, ``SNRVISn``; NaN where absent).
    """

    apogee_id: str
    path: str
    wavelength: np.ndarray
    X: np.ndarray
    vhelio: np.ndarray
    vhelio_err: np.ndarray
    snr: np.ndarray

    def __len__(self) -> int:
        return len(self.X)


def read_apstar_visits(path: str | Path, *,
                       bad_bits: Iterable[int] = DEFAULT_BAD_PIXEL_BITS) -> ApStarVisits:
    """Read the individual visits of an apStar file (see the module notes).

    Parameters
    ----------
    path : str or Path
        The apStar FITS file.
    bad_bits : iterable of int, default=DEFAULT_BAD_PIXEL_BITS
        APOGEE_PIXMASK bits that make a pixel unusable (inverse variance 0).

    Returns
    -------
    ApStarVisits
        ``X`` of shape (n_visits, 3, 8575).

    Raises
    ------
    BadFileError
        The file is not a readable apStar file (:func:`read_apstar`'s checks), or its rows do
        not match NVISITS (a multi-visit file needs 2 + NVISITS rows).
    """
    path = Path(path)
    data = read_file_bytes(path)
    name = str(path)
    layout = check_fits_length(data, name)
    combined = parse_apstar(data, path, bad_bits=bad_bits, layout=layout, digest=False)
    shape = layout[HDU_FLUX].shape
    rows = shape[0] if len(shape) == 2 else 1
    n_visits = combined.nvisits
    if rows == 1 or n_visits <= 1:                  # one visit: the combined row is it
        flux, error, pixmask = (combined.flux[None], combined.error[None],
                                combined.pixmask[None])
        n_visits = 1
    else:
        if rows != COMBINED_ROWS + n_visits:
            raise BadFileError(name, f"HDU {HDU_FLUX} has {rows} rows; NVISITS = {n_visits} "
                                     f"needs {COMBINED_ROWS + n_visits}")
        flux, error, pixmask = (image_array(data, layout[hdu], name, hdu)[COMBINED_ROWS:]
                                for hdu in (HDU_FLUX, HDU_ERROR, HDU_PIXMASK))
        if flux.shape[1] != APSTAR_N_PIXELS or error.shape != flux.shape:
            raise BadFileError(name, f"visit rows of shape {flux.shape}; expected "
                                     f"(n, {APSTAR_N_PIXELS})")
        flux, error, pixmask = flux.astype(float), error.astype(float), pixmask.astype(np.int64)
    header = [[card_text(layout[0], f"{key}{k + 1}", np.nan) for k in range(n_visits)]
              for key in ("VHELIO", "VERR", "SNRVIS")]
    vhelio, verr, snr = (np.array([v if isinstance(v, int | float) else np.nan for v in row],
                                  float) for row in header)
    ivar = inverse_variance(flux, error, pixmask, bad_bits=bad_bits)
    return ApStarVisits(combined.apogee_id, name, combined.wavelength,
                        stack_spectra(list(flux), list(ivar), pixmask=list(pixmask)),
                        vhelio, verr, snr)
