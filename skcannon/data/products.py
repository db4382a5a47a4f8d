"""Every spectrum product a user has, read into one form and prepared for a model.

Products are registered in :mod:`skcannon.data.registry`, one module each (identifier and
reader together), and identified from the file itself, never from its name alone:

* ``apStar`` (:mod:`~skcannon.data.product_apstar`) - combined spectra, DR17 and older (DR13
  ``r6``, DR14 single-visit) layouts;
* ``aspcapStar`` (:mod:`~skcannon.data.product_aspcapstar`) - ASPCAP's continuum-normalized
  spectrum (HDU 4 the ASPCAP table);
* ``apVisit`` (:mod:`~skcannon.data.product_apvisit`) - one visit, 3 chips x 4096 pixels with
  their own observed-frame wavelengths;
* ``normalized`` (:mod:`~skcannon.data.product_normalized`) - already-normalized arrays in an
  npz/HDF5 file (``spectrum``/``spectra``/``flux`` and their errors, see
  :mod:`skcannon.data.arrays`), on the 7214- or 7514-pixel gap-removed grid, the apStar grid, or
  a grid given as a ``wavelength`` array.

:func:`read_product` gives a :class:`ProductSpectra` per file; :func:`prepare_for_model` runs
the model's preprocessing on a batch: raw products (apStar, apVisit) go through all of it
(masking, regridding, continuum normalization), normalized ones are only masked and regridded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.pipeline import Pipeline

# the built-in products register themselves on import (in this order: the --product choices)
from skcannon.data import (  # noqa: F401
    product_apstar,
    product_apvisit,
    product_aspcapstar,
    product_normalized,
)
from skcannon.data.build import is_fitted, normalize_spectra
from skcannon.data.product_apvisit import visit_on_apstar_grid
from skcannon.data.registry import (
    ProductSpectra,
    SpectrumFile,
    get_product,
    identify,
    product_names,
    register_product,
    unregister_product,
)
from skcannon.errors import BadFileError
from skcannon.preprocessing import BitmaskMasker, Regridder

#: Raw spectra preprocessed together (:func:`prepare_for_model`): every step works star by
#: star, so blocks give one batch's result (to rounding: BLAS may order a block's sums
#: otherwise; labels agree to ~1e-8 relative), and a block's arrays (16 x 3 x 8575
#: doubles, 3.3 MB) stay in cache and in reused memory where a whole chunk's (256 spectra:
#: 53 MB per array) is a fresh mapping, page-faulted at every step - measured (CPU time, one
#: BLAS thread, 256 apStar files): 274 ms as one batch, 64: 190 ms, 16: 135 ms, 4: 143 ms.
PREPROCESS_BLOCK = 16

__all__ = ["ProductSpectra", "identify_product", "prepare_for_model", "product_names",
           "read_product", "register_product", "unregister_product", "visit_on_apstar_grid"]


def identify_product(data: bytes, name: str, layout=None) -> str:
    """Which registered product the bytes ``data`` of the file ``name`` are.

    Every registered identifier that may claim the file is asked (see
    :mod:`skcannon.data.registry`); e.g. apVisit: HDUs 1-4 are images of 3 x 4096;
    aspcapStar: HDU 1 a 1-D spectrum and HDU 4 a binary table (the ASPCAP row); apStar: HDUs
    1-3 images of 8575 pixels, HDU 3 integer.

    Parameters
    ----------
    data : bytes
        The file's contents.
    name : str
        The file's name (its suffix selects the identifiers asked; errors name it).
    layout : list of HDULayout, optional
        The file's :func:`~skcannon.apogee.fits_size.hdu_layout`, when already parsed.

    Returns
    -------
    str
        The product's name.

    Raises
    ------
    BadFileError
        Naming the file and what its HDUs hold, when no identifier claims it (or it is not
        FITS), or several do.
    """
    return identify(SpectrumFile(name, data, layout)).name


def read_product(path: str | Path, *, product: str | None = None, digest: bool = True
                 ) -> ProductSpectra:
    """Read a spectrum file of any registered product (see the module docstring).

    Parameters
    ----------
    path : path
    product : str, optional
        One of :func:`product_names`; the file must be that product (default: whichever it
        is).
    digest : bool, default=True
        Record the file's SHA-256 (``sha256``; "" when False, for readers that keep no
        provenance, such as a survey's chunks: it is ~40 % of reading a DR17 file).

    Returns
    -------
    ProductSpectra

    Raises
    ------
    ValueError
        When ``product`` is not a registered product.
    BadFileError
        Naming the file: missing, unreadable, none of the products, another product than
        ``product``, or damaged (the product's reader says how).
    """
    if product is not None:
        get_product(product)
    file = SpectrumFile(path)
    found = identify(file)
    if product is not None and found.name != product:
        raise BadFileError(file.path, f"is an {found.name} file, not {product} (--product)")
    return found.read(file, digest)


def prepare_for_model(spectra: Sequence[ProductSpectra], preprocessor: Pipeline) -> np.ndarray:
    """The spectra of ``spectra`` (in order) through the model's preprocessing.

    Raw spectra (apStar, apVisit; on the apStar grid) are preprocessed by ``preprocessor``
    (masking -> regridding -> continuum normalization) in blocks of :data:`PREPROCESS_BLOCK`
    (one batch's result to rounding, faster); normalized ones are
    masked with the same bits and regridded onto the same output grid, batched per input grid.

    Parameters
    ----------
    spectra : sequence of ProductSpectra
        The files' spectra (:func:`read_product`), in any mix of products and grids; a file
        may hold several spectra.
    preprocessor : sklearn.pipeline.Pipeline
        The model's preprocessing: a :class:`~skcannon.preprocessing.BitmaskMasker`, a
        :class:`~skcannon.preprocessing.Regridder` (whose output grid is the model's), then
        the continuum normalizer. Its bad bits and output grid are used, not changed.

    Returns
    -------
    ndarray, shape (n_spectra, 3, n_pixels_model)
        Normalized flux, inverse variance and bitmask on the model's grid, one row per spectrum
        in the order of ``spectra`` (files concatenated); ``n_spectra`` is 0 when there are
        none.
    """
    masker, regridder = preprocessor[0], preprocessor[1]
    target = (regridder if is_fitted(preprocessor) else clone(regridder).fit()).wavelength_
    parts: dict[int, np.ndarray] = {}
    raw = [i for i, s in enumerate(spectra) if not s.normalized]
    for block in spectrum_blocks(spectra, raw):
        batch = normalize_spectra(np.concatenate([spectra[i].X for i in block]), preprocessor)
        parts.update(_split(block, spectra, batch.normalized))
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


def spectrum_blocks(spectra: Sequence[ProductSpectra], indices: Sequence[int] | None = None
                    ) -> list[list[int]]:
    """``indices`` of ``spectra`` (default: all) cut into consecutive blocks of about
    :data:`PREPROCESS_BLOCK` spectra and of one spectrum length, so that each block's arrays
    concatenate (a file's spectra stay together).

    Parameters
    ----------
    spectra : sequence of ProductSpectra
    indices : sequence of int, optional

    Returns
    -------
    list of list of int
    """
    blocks: list[list[int]] = []
    size, length = PREPROCESS_BLOCK, None
    for i in range(len(spectra)) if indices is None else indices:
        if size >= PREPROCESS_BLOCK or spectra[i].X.shape[-1] != length:
            blocks.append([])
            size, length = 0, spectra[i].X.shape[-1]
        blocks[-1].append(i)
        size += spectra[i].X.shape[0]
    return blocks


def _split(indices: list[int], spectra: Sequence[ProductSpectra], X: np.ndarray) -> dict:
    """Rows of the batch ``X`` back to the files they came from (a file may hold several)."""
    out, start = {}, 0
    for i in indices:
        out[i] = X[start:start + len(spectra[i])]
        start += len(spectra[i])
    return out


