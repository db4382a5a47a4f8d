"""Every APOGEE spectrum product a user has, read into one form and prepared for a model.

Products (identified from the file itself, never from its name alone):

* ``apStar`` - combined spectra, DR17 and older (DR13 ``r6``, DR14 single-visit) layouts;
* ``aspcapStar`` - ASPCAP's continuum-normalized spectrum (HDU 4 the ASPCAP table);
* ``apVisit`` - one visit, 3 chips x 4096 pixels with their own observed-frame wavelengths;
* ``normalized`` - already-normalized arrays in an npz/HDF5 file (``spectrum``/``spectra``/
  ``flux`` and their errors, see :mod:`skcannon.data.arrays`), on the 7214- or 7514-pixel
  gap-removed grid, the apStar grid, or a grid given as a ``wavelength`` array.

:func:`read_product` gives a :class:`ProductSpectra` per file; :func:`prepare_for_model` runs
the model's preprocessing on a batch: raw products (apStar, apVisit) go through all of it
(masking, regridding, continuum normalization), normalized ones are only masked and regridded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline

from skcannon.apogee.aspcap import parse_aspcapstar
from skcannon.apogee.constants import (
    APSTAR_N_PIXELS,
    APVISIT_CHIP_PIXELS,
    APVISIT_N_CHIPS,
    ASPCAP_HDU_TABLE,
    HDU_PIXMASK,
    PRODUCTS,
)
from skcannon.apogee.fits_size import HDULayout, hdu_layout, read_file_bytes
from skcannon.apogee.grids import apstar_wavelength, aspcap_dr12_wavelength, aspcap_dr17_wavelength
from skcannon.apogee.reader import apogee_id_from_name, inverse_variance, parse_apstar
from skcannon.apogee.visit import ApVisitSpectrum, parse_apvisit
from skcannon.data.arrays import load_labelled_arrays
from skcannon.data.build import normalize_spectra
from skcannon.errors import BadFileError
from skcannon.preprocessing import BitmaskMasker, Regridder
from skcannon.spectra import BIT_REGRID_MASKED, MASK, set_bit, stack_spectra

#: File suffixes of array files (the ``normalized`` product).
ARRAY_SUFFIXES = (".npz", ".h5", ".hdf5")


@dataclass(frozen=True)
class ProductSpectra:
    """The spectra of one file, whatever the product.

    Attributes
    ----------
    path : str
    product : str  one of :data:`PRODUCTS`
    ids : list of str  one APOGEE_ID per spectrum
    snr : ndarray, shape (n_spectra,)  (NaN where unknown)
    wavelength : ndarray, shape (n_pixels,)  the grid of ``X``
    X : ndarray, shape (n_spectra, 3, n_pixels)  flux, inverse variance, bitmask
    normalized : bool  True when already continuum-normalized (aspcapStar, arrays)
    sha256 : str  of the file's bytes
    """

    path: str
    product: str
    ids: list[str]
    snr: np.ndarray
    wavelength: np.ndarray
    X: np.ndarray
    normalized: bool
    sha256: str

    def __len__(self) -> int:
        return self.X.shape[0]


def identify_product(data: bytes, name: str, layout: list[HDULayout] | None = None) -> str:
    """Which FITS product the bytes ``data`` of the file ``name`` are, from the HDU layout.

    apVisit: HDUs 1-4 are images of 3 x 4096; aspcapStar: HDU 1 a 1-D spectrum and HDU 4 a
    binary table (the ASPCAP row); apStar: HDUs 1-3 images of 8575 pixels, HDU 3 integer.

    Raises
    ------
    BadFileError
        Naming the file and what its HDUs hold, when it is none of them (or not FITS).
    """
    layout = hdu_layout(data, name) if layout is None else layout
    shapes = [hdu.shape for hdu in layout[1:5]]
    xtension = [str(hdu.cards.get("XTENSION", "")).strip("' ") for hdu in layout]
    if len(layout) > 4 and all(s == (APVISIT_N_CHIPS, APVISIT_CHIP_PIXELS) for s in shapes):
        return "apVisit"
    if (len(layout) > ASPCAP_HDU_TABLE and xtension[ASPCAP_HDU_TABLE] == "BINTABLE"
            and len(layout[1].shape) == 1):
        return "aspcapStar"
    if (len(layout) > HDU_PIXMASK and all(s and s[-1] == APSTAR_N_PIXELS for s in shapes[:3])
            and layout[HDU_PIXMASK].bitpix > 0):
        return "apStar"
    found = ", ".join(f"{x or 'image'} {s}" for x, s in zip(xtension[1:5], shapes, strict=False))
    raise BadFileError(name, f"is none of the products {', '.join(PRODUCTS[:3])} (HDUs 1-4: "
                             f"{found or 'none'})")


def _grid_for(n_pixels: int, name: str) -> np.ndarray:
    grids = {APSTAR_N_PIXELS: apstar_wavelength, 7214: aspcap_dr12_wavelength,
             7514: aspcap_dr17_wavelength}
    if n_pixels not in grids:
        raise BadFileError(name, f"spectra of {n_pixels} pixels without a 'wavelength' array: "
                                 "not one of the APOGEE grids (8575, 7214 or 7514 pixels)")
    return grids[n_pixels]()


def _read_arrays(path: Path, digest: bool) -> ProductSpectra:
    arrays = load_labelled_arrays(path)
    n_pixels = arrays.X.shape[-1]
    wavelength = (arrays.wavelength if arrays.wavelength is not None
                  else _grid_for(n_pixels, str(path)))
    n = arrays.X.shape[0]
    ids = (list(arrays.table["APOGEE_ID"].astype(str)) if "APOGEE_ID" in arrays.table
           else [apogee_id_from_name(path.name)] * n)
    snr_column = next((c for c in ("snrs", "SNR", "snr") if c in arrays.table), None)
    snr = (arrays.table[snr_column].to_numpy(float) if snr_column else np.full(n, np.nan))
    return ProductSpectra(str(path), "normalized", ids, snr, np.asarray(wavelength, float),
                          arrays.X, True,
                          hashlib.sha256(path.read_bytes()).hexdigest() if digest else "")


def visit_on_apstar_grid(visit: ApVisitSpectrum, *, bad_bits=None) -> np.ndarray:
    """An apVisit spectrum in its rest frame, resampled onto the apStar grid.

    Each chip is resampled on its own (linear in log wavelength, masked neighbours masked,
    :class:`Regridder`), so no pixel is interpolated across a chip gap; apStar pixels that no
    chip covers are masked (ivar 0, bit REGRID_MASKED_NEIGHBOUR).

    Returns
    -------
    ndarray, shape (1, 3, 8575)  flux, inverse variance, bitmask
    """
    options = {} if bad_bits is None else {"bad_bits": bad_bits}
    ivar = inverse_variance(visit.flux, visit.error, visit.pixmask, **options)
    target = apstar_wavelength()
    out = stack_spectra(np.ones(target.size), np.zeros(target.size))
    covered = np.zeros(target.size, dtype=bool)
    for chip in range(visit.wavelength.shape[0]):
        order = np.argsort(visit.rest_wavelength[chip])
        X_chip = stack_spectra(visit.flux[chip, order], ivar[chip, order],
                               pixmask=visit.pixmask[chip, order])
        regridder = Regridder(visit.rest_wavelength[chip, order],
                              target_wavelength=target).fit(X_chip)
        inside = regridder.inside_ & ~covered
        out[:, :, inside] = regridder.transform(X_chip)[:, :, inside]
        covered |= inside
    set_bit(out[:, MASK], ~covered[None, :], BIT_REGRID_MASKED)
    return out


def read_product(path: str | Path, *, product: str | None = None, digest: bool = True
                 ) -> ProductSpectra:
    """Read a spectrum file of any product (see the module docstring).

    Parameters
    ----------
    path : path
    product : str, optional
        One of :data:`PRODUCTS`; the file must be that product (default: whichever it is).
    digest : bool
        Record the file's SHA-256 (``sha256``; "" when False, for readers that keep no
        provenance, such as a survey's chunks: it is ~40 % of reading a DR17 file).

    Raises
    ------
    BadFileError
        Naming the file: missing, unreadable, none of the products, another product than
        ``product``, or damaged (the product's reader says how).
    """
    path = Path(path)
    if product is not None and product not in PRODUCTS:
        raise ValueError(f"product must be one of {', '.join(PRODUCTS)}; got {product!r}")
    if path.suffix.lower() in ARRAY_SUFFIXES:
        found = _read_arrays(path, digest)
    else:
        data = read_file_bytes(path)
        layout = hdu_layout(data, str(path))
        found = _read_fits(data, path, identify_product(data, str(path), layout), layout,
                           digest)
    if product is not None and found.product != product:
        raise BadFileError(path, f"is an {found.product} file, not {product} (--product)")
    return found


def _read_fits(data: bytes, path: Path, product: str, layout: list[HDULayout],
               digest: bool) -> ProductSpectra:
    if product == "apStar":
        star = parse_apstar(data, path, layout=layout, digest=digest)
        X = stack_spectra(star.flux, star.ivar, pixmask=star.pixmask)
        return ProductSpectra(str(path), product, [star.apogee_id], np.array([star.snr]),
                              star.wavelength, X, False, star.sha256)
    if product == "aspcapStar":
        star = parse_aspcapstar(data, path, digest=digest)
        return ProductSpectra(str(path), product, [star.apogee_id], np.array([star.snr]),
                              star.wavelength, stack_spectra(star.flux, star.ivar), True,
                              star.sha256)
    visit = parse_apvisit(data, path, layout=layout, digest=digest)
    return ProductSpectra(str(path), product, [visit.apogee_id], np.array([visit.snr]),
                          apstar_wavelength(), visit_on_apstar_grid(visit), False, visit.sha256)


def prepare_for_model(spectra: Sequence[ProductSpectra], preprocessor: Pipeline) -> np.ndarray:
    """The spectra of ``spectra`` (in order) through the model's preprocessing.

    Raw spectra (apStar, apVisit; on the apStar grid) are preprocessed together by
    ``preprocessor`` (masking -> regridding -> continuum normalization); normalized ones are
    masked with the same bits and regridded onto the same output grid, batched per input grid.

    Returns
    -------
    ndarray, shape (n_spectra, 3, n_pixels_model)
    """
    masker, regridder = preprocessor[0], preprocessor[1]
    target = regridder.fit().wavelength_
    parts: dict[int, np.ndarray] = {}
    raw = [i for i, s in enumerate(spectra) if not s.normalized]
    if raw:
        batch = normalize_spectra(np.concatenate([spectra[i].X for i in raw]), preprocessor)
        parts.update(_split(raw, spectra, batch.normalized))
    groups: dict[bytes, list[int]] = {}
    for i, s in enumerate(spectra):
        if s.normalized:
            groups.setdefault(s.wavelength.tobytes(), []).append(i)
    for members in groups.values():
        X = np.concatenate([spectra[i].X for i in members])
        X = BitmaskMasker(bad_bits=masker.bad_bits).fit_transform(X)
        grid = spectra[members[0]].wavelength
        if not (grid.shape == target.shape and np.array_equal(grid, target)):
            X = Regridder(grid, target_wavelength=target).fit_transform(X)
        parts.update(_split(members, spectra, X))
    if not parts:
        return np.empty((0, 3, target.size))
    return np.concatenate([parts[i] for i in range(len(spectra))])


def _split(indices: list[int], spectra: Sequence[ProductSpectra], X: np.ndarray) -> dict:
    """Rows of the batch ``X`` back to the files they came from (a file may hold several)."""
    out, start = {}, 0
    for i in indices:
        out[i] = X[start:start + len(spectra[i])]
        start += len(spectra[i])
    return out


