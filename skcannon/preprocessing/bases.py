"""Continuum bases, by name: the smooth functions :class:`ContinuumNormalizer` fits.

A basis is a function ``(wavelength, region_range, order) -> design`` giving the basis functions
at the ``wavelength`` pixels of one region (``region_range = (start, stop)``, Angstrom), shape
(n, k). :data:`CONTINUUM_BASES` maps names to them; "chebyshev" and "sincos" are registered
here, and :func:`register_continuum_basis` adds another (the normalizer's ``basis`` parameter and
the command line's ``--basis`` accept every registered name).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.polynomial import chebyshev

#: Period of the sine/cosine continuum basis (Ness et al. 2015), Angstrom.
SINCOS_PERIOD = 1400.0

#: A continuum basis: (wavelength (n,), region range (start, stop), order) -> design (n, k).
ContinuumBasis = Callable[[np.ndarray, tuple[float, float], int], np.ndarray]


def chebyshev_basis(wavelength: np.ndarray, region_range: tuple[float, float],
                    order: int) -> np.ndarray:
    """Chebyshev polynomials of degree 0..``order`` in wavelength scaled to [-1, 1] over the region.

    Parameters
    ----------
    wavelength : ndarray, shape (n,)
        Pixels of the region, Angstrom.
    region_range : tuple of float
        ``(start, stop)`` of the region, Angstrom (mapped to -1 and 1).
    order : int
        Polynomial degree.

    Returns
    -------
    ndarray, shape (n, order + 1)
    """
    lo, hi = region_range
    return chebyshev.chebvander(2 * (wavelength - lo) / (hi - lo) - 1, order)


def sincos_basis(wavelength: np.ndarray, region_range: tuple[float, float],
                 order: int) -> np.ndarray:
    """A constant and ``order`` sine/cosine pairs, periods ``SINCOS_PERIOD`` / j (Ness+ 2015).

    Parameters
    ----------
    wavelength : ndarray, shape (n,)
        Pixels of the region, Angstrom.
    region_range : tuple of float
        ``(start, stop)`` of the region (unused: the period is absolute).
    order : int
        Number of harmonics.

    Returns
    -------
    ndarray, shape (n, 2 * order + 1)
    """
    phase = 2 * np.pi * np.outer(wavelength, np.arange(1, order + 1)) / SINCOS_PERIOD
    return np.hstack([np.ones((len(wavelength), 1)), np.sin(phase), np.cos(phase)])


#: Registered continuum bases by name (add with :func:`register_continuum_basis`).
CONTINUUM_BASES: dict[str, ContinuumBasis] = {
    "chebyshev": chebyshev_basis,
    "sincos": sincos_basis,
}


def register_continuum_basis(name: str, function: ContinuumBasis, *,
                             overwrite: bool = False) -> None:
    """Make ``function`` available as ``ContinuumNormalizer(basis=name)``.

    Parameters
    ----------
    name : str
        The basis name (what ``basis=`` and ``--basis`` take).
    function : callable
        ``(wavelength, region_range, order) -> ndarray of shape (n, k)`` (see
        :func:`chebyshev_basis`).
    overwrite : bool, default=False
        Replace a basis already registered under ``name``.

    Raises
    ------
    ValueError
        ``name`` is taken (and ``overwrite`` is False), or is not a non-empty string.
    TypeError
        ``function`` is not callable.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a continuum basis name must be a non-empty string, got {name!r}")
    if not callable(function):
        raise TypeError(f"continuum basis {name!r} must be callable, got {function!r}")
    if name in CONTINUUM_BASES and not overwrite:
        raise ValueError(f"continuum basis {name!r} is already registered "
                         "(pass overwrite=True to replace it)")
    CONTINUUM_BASES[name] = function


def unregister_continuum_basis(name: str) -> ContinuumBasis:
    """Remove the basis registered as ``name`` and return it.

    Parameters
    ----------
    name : str
        A registered basis name.

    Returns
    -------
    callable
        The removed basis function.

    Raises
    ------
    KeyError
        No basis is registered as ``name``.
    """
    if name not in CONTINUUM_BASES:
        raise KeyError(f"no continuum basis registered as {name!r}; "
                       f"registered: {sorted(CONTINUUM_BASES)}")
    return CONTINUUM_BASES.pop(name)


def continuum_basis(wavelength: np.ndarray, region_range: tuple[float, float], basis: str,
                    order: int) -> np.ndarray:
    """The registered basis ``basis`` at ``wavelength``.

    Parameters
    ----------
    wavelength : ndarray, shape (n,)
        Pixels of the region, Angstrom.
    region_range : tuple of float
        ``(start, stop)`` of the region, Angstrom.
    basis : str
        A name in :data:`CONTINUUM_BASES`.
    order : int
        Degree or number of harmonics.

    Returns
    -------
    ndarray, shape (n, k)

    Raises
    ------
    ValueError
        ``basis`` is not registered.
    """
    if basis not in CONTINUUM_BASES:
        raise ValueError(f"basis must be one of {sorted(CONTINUUM_BASES)}, got {basis!r}")
    design = np.asarray(CONTINUUM_BASES[basis](wavelength, region_range, order), dtype=float)
    if design.ndim != 2 or design.shape[0] != len(wavelength):
        raise ValueError(f"continuum basis {basis!r} returned shape {design.shape}; expected "
                         f"({len(wavelength)}, k)")
    return design
