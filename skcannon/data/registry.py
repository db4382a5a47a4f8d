"""The registry of spectrum products: each product registers an identifier and a reader
together (as astropy's I/O registry does per format), so a new product is one module and one
:func:`register_product` call, and a file no identifier claims is a named error.

A file is identified by asking identifiers, never from its name alone: the products that
declare the file's suffix (e.g. ``.npz`` for normalized arrays) are asked when there are any,
else every product that declares none (the FITS products, which look at the file's HDUs).
The built-in products (:mod:`skcannon.data.product_apstar`, ``product_aspcapstar``,
``product_apvisit``, ``product_normalized``) register when :mod:`skcannon.data` is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skcannon.apogee.fits_size import HDULayout, hdu_layout, read_file_bytes
from skcannon.errors import BadFileError


@dataclass(frozen=True)
class ProductSpectra:
    """The spectra of one file, whatever the product.

    Attributes
    ----------
    path : str
    product : str  one of :func:`product_names`
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


class SpectrumFile:
    """A file being identified and read: its bytes and FITS layout, each read once, lazily.

    Parameters
    ----------
    path : str or Path
    data : bytes, optional  the file's bytes, when already read
    layout : list of HDULayout, optional  its :func:`hdu_layout`, when already parsed
    """

    def __init__(self, path: str | Path, data: bytes | None = None,
                 layout: list[HDULayout] | None = None) -> None:
        self.path = Path(path)
        self.name = str(path)
        self._data, self._layout = data, layout

    @property
    def suffix(self) -> str:
        """The file name's suffix, lower case (``".fits"``, ``".npz"`` ...)."""
        return self.path.suffix.lower()

    @property
    def data(self) -> bytes:
        """The file's bytes (:class:`BadFileError` when missing or unreadable)."""
        if self._data is None:
            self._data = read_file_bytes(self.path)
        return self._data

    @property
    def layout(self) -> list[HDULayout]:
        """The FITS HDU layout (:class:`BadFileError` naming the file when not FITS)."""
        if self._layout is None:
            self._layout = hdu_layout(self.data, self.name)
        return self._layout

    def describe(self) -> str:
        """What the file holds, in words, for an error message (HDUs 1-4 of a FITS file)."""
        if self._layout is None and self._data is None:
            return f"a {self.suffix or 'suffix-less'} file"
        layout = self.layout
        xtension = [str(hdu.cards.get("XTENSION", "")).strip("' ") for hdu in layout[1:5]]
        shapes = [hdu.shape for hdu in layout[1:5]]
        found = ", ".join(f"{x or 'image'} {s}" for x, s in zip(xtension, shapes, strict=True))
        return f"HDUs 1-4: {found or 'none'}"


@dataclass(frozen=True)
class Product:
    """One registered product (see :func:`register_product` for the attributes)."""

    name: str
    identify: Callable[[SpectrumFile], bool]
    read: Callable[[SpectrumFile, bool], ProductSpectra]
    normalized: bool
    suffixes: tuple[str, ...] | None = None
    priority: int = 0


_PRODUCTS: dict[str, Product] = {}


def register_product(name: str, *, identify: Callable[[SpectrumFile], bool],
                     read: Callable[[SpectrumFile, bool], ProductSpectra], normalized: bool,
                     suffixes: tuple[str, ...] | None = None, priority: int = 0) -> Product:
    """Register a spectrum product: its identifier and its reader, together.

    Parameters
    ----------
    name : str
        The product's name (``--product`` choice, ``PRODUCT`` column value).
    identify : callable(SpectrumFile) -> bool
        True when the file is this product (from its contents: HDUs, header keys).
    read : callable(SpectrumFile, bool) -> ProductSpectra
        Reads the file; the bool says whether to record its SHA-256.
    normalized : bool
        The product's spectra are already continuum-normalized.
    suffixes : tuple of str, optional
        File suffixes this product owns (lower case, e.g. ``(".npz",)``): its identifier is
        asked for those files only, and only it and other owners of the suffix are asked.
        Default None: a FITS product, asked for every file whose suffix no product owns.
    priority : int, default=0
        When several identifiers claim a file, the highest priority wins; a tie is an error.

    Returns
    -------
    Product

    Raises
    ------
    ValueError
        When ``name`` is already registered.
    """
    if name in _PRODUCTS:
        raise ValueError(f"product {name!r} is already registered")
    product = Product(name, identify, read, normalized,
                      None if suffixes is None else tuple(s.lower() for s in suffixes),
                      priority)
    _PRODUCTS[name] = product
    return product


def unregister_product(name: str) -> None:
    """Remove the product ``name`` from the registry.

    Parameters
    ----------
    name : str
        A registered product (KeyError when it is not).
    """
    del _PRODUCTS[name]


def product_names() -> tuple[str, ...]:
    """The registered products' names.

    Returns
    -------
    tuple of str
        In registration order (the ``--product`` choices).
    """
    return tuple(_PRODUCTS)


def get_product(name: str) -> Product:
    """The registered product ``name``.

    Parameters
    ----------
    name : str

    Returns
    -------
    Product

    Raises
    ------
    ValueError
        Naming the registered products, when ``name`` is none of them.
    """
    if name not in _PRODUCTS:
        raise ValueError(f"product must be one of {', '.join(_PRODUCTS)}; got {name!r}")
    return _PRODUCTS[name]


def candidates(file: SpectrumFile) -> list[Product]:
    """The products whose identifiers are asked about ``file`` (see the module docstring).

    Parameters
    ----------
    file : SpectrumFile

    Returns
    -------
    list of Product
        The products owning the file's suffix, else every product that owns none.
    """
    owners = [p for p in _PRODUCTS.values() if p.suffixes and file.suffix in p.suffixes]
    return owners or [p for p in _PRODUCTS.values() if p.suffixes is None]


def identify(file: SpectrumFile) -> Product:
    """The one product whose identifier claims ``file``.

    Parameters
    ----------
    file : SpectrumFile

    Returns
    -------
    Product
        The claimant of the highest priority.

    Raises
    ------
    BadFileError
        Naming the file and what it holds, when no identifier claims it (or it is not FITS),
        or when several of the same priority do.
    """
    asked = candidates(file)
    claims = [p for p in asked if p.identify(file)]
    if not claims:
        names = ", ".join(p.name for p in asked) or "(none registered)"
        raise BadFileError(file.name, f"is none of the products {names} ({file.describe()})")
    best = max(p.priority for p in claims)
    winners = [p for p in claims if p.priority == best]
    if len(winners) > 1:
        raise BadFileError(file.name, "is claimed by several products "
                                      f"({', '.join(p.name for p in winners)}): ambiguous")
    return winners[0]
