"""Where each element's lines are: ASPCAP's element fitting windows (DR17, l31c masks).

``aspcap_l31c_masks.npy`` holds int32 (7514,) on the DR13-DR17 gap-removed grid; bit k is set
where the pixel lies in the window of element k of :data:`ASPCAP_WINDOW_ELEMENTS`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from skcannon.apogee.grids import aspcap_dr17_wavelength
from skcannon.errors import BadFileError

#: Element order of the bits in ASPCAP's l31c window masks.
ASPCAP_WINDOW_ELEMENTS = ("C", "CI", "N", "O", "Na", "Mg", "Al", "Si", "P", "S", "K", "Ca", "Ti",
                          "TiII", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Ge", "Ce", "Rb", "Y",
                          "Nd")


def load_element_windows(path: str | Path, wavelength: np.ndarray,
                         elements=("Mg", "Si")) -> dict[str, np.ndarray]:
    """Boolean window masks of ``elements`` on the grid ``wavelength`` (Angstrom).

    Each target pixel takes the window bit of the nearest DR17-grid pixel if that one is
    within half a pixel (in log wavelength); otherwise it is outside every window. A missing or
    malformed file raises :class:`BadFileError` naming it.
    """
    source = aspcap_dr17_wavelength()
    if not Path(path).is_file():
        raise BadFileError(path, "element window file not found")
    try:
        bits = np.load(path, allow_pickle=False)
    except Exception as exc:     # numpy raises ValueError, OSError ... on a malformed file
        raise BadFileError(path, f"cannot be read as an element window file "
                                 f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(bits, np.ndarray) or bits.shape != source.shape \
            or bits.dtype.kind not in "iu":
        raise BadFileError(path, f"expected {source.size} integer window entries, got "
                                 f"{getattr(bits, 'dtype', type(bits).__name__)} of shape "
                                 f"{getattr(bits, 'shape', None)}")
    log_source, log_target = np.log10(source), np.log10(np.asarray(wavelength, float))
    index = np.clip(np.searchsorted(log_source, log_target), 1, source.size - 1)
    nearest = np.where(np.abs(log_source[index - 1] - log_target)
                       < np.abs(log_source[index] - log_target), index - 1, index)
    close = np.abs(log_source[nearest] - log_target) <= 0.5 * np.diff(log_source).min()
    out = {}
    for element in elements:
        bit = ASPCAP_WINDOW_ELEMENTS.index(element)
        out[element] = close & ((bits[nearest] >> bit) & 1 == 1)
    return out


def window_enrichment(gradient: np.ndarray, window: np.ndarray, usable: np.ndarray,
                      top_n: int = 100) -> dict:
    """Do the strongest |gradient| pixels fall in an element's windows more than by chance?

    Returns the fraction of the ``top_n`` pixels with the largest |gradient| (among ``usable``)
    that lie in ``window``, the fraction expected by chance (the window's share of usable
    pixels), their ratio, and the binomial probability of at least that many by chance.
    """
    from scipy.stats import binom

    candidates = np.flatnonzero(usable)
    top = candidates[np.argsort(np.abs(gradient[candidates]))[::-1][:top_n]]
    hits = int(window[top].sum())
    chance = float(window[candidates].mean())
    return {"top_n": int(top.size), "in_window": hits, "fraction": hits / top.size,
            "chance_fraction": chance,
            "enrichment": (hits / top.size) / chance if chance > 0 else np.inf,
            "p_value": float(binom.sf(hits - 1, top.size, chance))}
