"""MIST isochrones for the Kiel diagram and the giant-branch spectra sequence.

Sources, in order of preference for a requested [Fe/H] and age:

1. CSV exports in a directory (``../shared/isochrones/mist_v1.2/``: columns eep, age (log yr),
   initial_mass, star_mass, log_Teff, log_g, ..., phase, ..., Teff);
2. the standard MIST ``*.iso`` text format (header lines start with '#'; one block per age);
3. the MIST v1.2 grid in the optional package ``lachesis-grids`` (``pip install
   skcannon[isochrones]``), interpolated linearly in log age (and [Fe/H]) at fixed EEP.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from skcannon.errors import SkcannonError
from skcannon.integrity import read_csv_table

#: MIST phases (``phase`` column): -1 pre-MS, 0 MS, 2 RGB, 3 core He burning, 4 early AGB ...
PHASE_RGB = 2
#: Gravitational constant times the solar mass (IAU 2015 nominal), cm^3 s^-2.
GM_SUN_CGS = 1.3271244e26
#: Nominal solar radius (IAU 2015), cm.
R_SUN_CGS = 6.957e10
_HOW_TO = ("install the optional grid with 'pip install \"skcannon[isochrones]\"' (lachesis-grids, "
           "MIST v1.2), or download MIST v1.2 '.iso' files from https://waps.cfa.harvard.edu/MIST/ "
           "and pass their directory")


class IsochroneNotFound(SkcannonError):
    """No isochrone source holds the requested [Fe/H] and age."""


def surface_gravity(mass_msun, radius_rsun):
    """log10 of the surface gravity in cm s^-2 for masses (solar) and radii (solar).

    Parameters
    ----------
    mass_msun : float or array_like
        Masses in solar masses (> 0).
    radius_rsun : float or array_like
        Radii in solar radii (> 0), broadcast against ``mass_msun``.

    Returns
    -------
    ndarray
        log g (cgs), of the broadcast shape.

    Raises
    ------
    ValueError
        A mass or radius is not positive.
    """
    mass = np.asarray(mass_msun, dtype=float)
    radius = np.asarray(radius_rsun, dtype=float)
    if np.any(mass <= 0) or np.any(radius <= 0):
        raise ValueError("mass and radius must be positive")
    return np.log10(GM_SUN_CGS * mass / (radius * R_SUN_CGS) ** 2)


def read_mist_csv(path: str | Path) -> pd.DataFrame:
    """An isochrone exported as CSV (columns as in the MIST tables, with Teff).

    Parameters
    ----------
    path : str or path-like
        The CSV file; ``Teff`` is computed from ``log_Teff`` when the file lacks it.

    Returns
    -------
    DataFrame
        One row per EEP, with the MIST columns and ``Teff`` (K).
    """
    table = read_csv_table(path)
    if "Teff" not in table:
        table["Teff"] = 10 ** table["log_Teff"]
    return table


def read_mist_iso(path: str | Path) -> list[tuple[float, float, pd.DataFrame]]:
    """All isochrones in a MIST ``.iso`` file.

    Parameters
    ----------
    path : str or path-like
        The ``.iso`` file.

    Returns
    -------
    list of (float, float, DataFrame)
        (log10 age in yr, [Fe/H], table) per age block; the table has ``eep``, ``age`` and
        ``Teff`` columns besides the file's.

    Raises
    ------
    IsochroneNotFound
        Naming the file, when it holds no isochrone block.
    """
    lines = Path(path).read_text().splitlines()
    feh = np.nan
    blocks: list[tuple[float, float, pd.DataFrame]] = []
    columns: list[str] | None = None
    rows: list[list[float]] = []

    def flush() -> None:
        if columns and rows:
            table = pd.DataFrame(rows, columns=columns)
            table = table.rename(columns={"EEP": "eep", "log10_isochrone_age_yr": "age"})
            table["Teff"] = 10 ** table["log_Teff"]
            blocks.append((float(table["age"].iloc[0]), feh, table))

    for i, line in enumerate(lines):
        if line.startswith("#"):
            text = line.lstrip("#").split()
            if "[Fe/H]" in text and i + 1 < len(lines):
                values = lines[i + 1].lstrip("#").split()
                feh = float(values[text.index("[Fe/H]")])
            if text and text[0] == "EEP":
                flush()
                columns, rows = text, []
            continue
        if line.strip() and columns:
            rows.append([float(v) for v in line.split()])
    flush()
    if not blocks:
        raise IsochroneNotFound(f"{path}: no isochrone blocks found (not a MIST .iso file?)")
    return blocks


def _lachesis_grid():
    try:
        import lachesis_grids
    except ImportError:
        return None
    return Path(lachesis_grids.__file__).parent / "grids" / "mist_v1.2_vvcrit0.4.h5"


def _grid_block(h5, i_feh: int, i_age: int) -> pd.DataFrame:
    """Block k = i_feh x n_ages + i_age; its rows follow the blocks before it in ``values``
    (``lengths`` rows each; ``offsets`` holds each block's first EEP index, not a row)."""
    columns = [c.decode() if isinstance(c, bytes) else str(c) for c in h5.attrs["columns"]]
    n_age = len(h5["age_values"])
    block = i_feh * n_age + i_age
    lengths = h5["lengths"][()]
    start = int(lengths[:block].sum())
    return pd.DataFrame(h5["values"][start : start + int(lengths[block])], columns=columns)


def _interpolate(a: pd.DataFrame, b: pd.DataFrame, weight: float) -> pd.DataFrame:
    """(1 - weight) a + weight b at the EEPs both hold."""
    merged = a.merge(b, on="eep", suffixes=("_a", "_b"))
    out = pd.DataFrame({"eep": merged["eep"]})
    for column in a.columns:
        if column == "eep":
            continue
        out[column] = (1 - weight) * merged[f"{column}_a"] + weight * merged[f"{column}_b"]
    out["phase"] = np.round(out["phase"])
    out["Teff"] = 10 ** out["log_Teff"]
    return out


def lachesis_isochrone(feh: float, age_gyr: float) -> pd.DataFrame:
    """MIST v1.2 isochrone from lachesis-grids, interpolated in log age (and [Fe/H]) per EEP.

    Parameters
    ----------
    feh : float
        [Fe/H] (dex).
    age_gyr : float
        Age in Gyr.

    Returns
    -------
    DataFrame
        One row per EEP, with the MIST columns and ``Teff`` (K).

    Raises
    ------
    IsochroneNotFound
        lachesis-grids is not installed, or ``feh`` or the age is outside its grid.
    """
    import h5py

    path = _lachesis_grid()
    if path is None or not path.is_file():
        raise IsochroneNotFound(f"lachesis-grids is not installed: {_HOW_TO}")
    log_age = np.log10(age_gyr * 1e9)
    with h5py.File(path, "r") as h5:
        fehs, ages = h5["feh_values"][()], h5["age_values"][()]
        if not (fehs[0] <= feh <= fehs[-1] and ages[0] <= log_age <= ages[-1]):
            raise IsochroneNotFound(f"[Fe/H] {feh} or log age {log_age:.3f} outside the grid "
                                    f"({fehs[0]}..{fehs[-1]}, {ages[0]}..{ages[-1]})")
        j = int(np.clip(np.searchsorted(ages, log_age) - 1, 0, len(ages) - 2))
        t = (log_age - ages[j]) / (ages[j + 1] - ages[j])
        i = int(np.clip(np.searchsorted(fehs, feh) - 1, 0, len(fehs) - 2))
        f = (feh - fehs[i]) / (fehs[i + 1] - fehs[i])
        at_feh = [_interpolate(_grid_block(h5, k, j), _grid_block(h5, k, j + 1), t)
                  for k in (i, i + 1)]
    return _interpolate(at_feh[0], at_feh[1], f)


def load_isochrone(feh: float, age_gyr: float = 6.0, directory: str | Path | None = None
                   ) -> pd.DataFrame:
    """The MIST isochrone at ``feh`` and ``age_gyr`` from the first source that has it.

    Parameters
    ----------
    feh : float
        [Fe/H] (dex).
    age_gyr : float, default=6.0
        Age in Gyr.
    directory : str or path-like, default=None
        May hold CSV exports named like ``MIST_v1.2_feh_m1.00_6Gyr_interp_EEP.csv`` and/or
        MIST ``.iso`` files; searched first. None: only lachesis-grids.

    Returns
    -------
    DataFrame
        One row per EEP, with the MIST columns and ``Teff`` (K).

    Raises
    ------
    IsochroneNotFound
        No source has it; the message says how to get isochrones.
    """
    log_age = np.log10(age_gyr * 1e9)
    if directory is not None and Path(directory).is_dir():
        tag = f"{'m' if feh < 0 else 'p'}{abs(feh):.2f}"
        for path in sorted(Path(directory).glob(f"*feh_{tag}_*.csv")):
            table = read_mist_csv(path)
            if np.isclose(table["age"].iloc[0], log_age, atol=0.005):
                return table
        for path in sorted(Path(directory).glob("*.iso")):
            for age, block_feh, table in read_mist_iso(path):
                if np.isclose(block_feh, feh, atol=0.01) and np.isclose(age, log_age, atol=0.005):
                    return table
    if _lachesis_grid() is not None:
        return lachesis_isochrone(feh, age_gyr)
    where = f" in {directory}" if directory else ""
    raise IsochroneNotFound(f"no MIST isochrone for [Fe/H] = {feh:+.2f} at {age_gyr:g} Gyr"
                            f"{where}: {_HOW_TO}")


def giant_branch(isochrone: pd.DataFrame) -> pd.DataFrame:
    """The red-giant-branch part (MIST phase 2), ordered by decreasing log g.

    Parameters
    ----------
    isochrone : DataFrame
        With ``phase`` and ``log_g`` columns.

    Returns
    -------
    DataFrame
        The RGB rows, with a fresh index.
    """
    rgb = isochrone[np.round(isochrone["phase"]) == PHASE_RGB]
    return rgb.sort_values("log_g", ascending=False).reset_index(drop=True)


def teff_on_giant_branch(isochrone: pd.DataFrame, logg) -> np.ndarray:
    """Teff (K) on the isochrone's giant branch at the given log g (linear interpolation,
    clamped to the branch's ends).

    Parameters
    ----------
    isochrone : DataFrame
        With ``phase``, ``log_g`` and ``Teff`` columns.
    logg : float or array_like
        Surface gravities (dex).

    Returns
    -------
    ndarray
        Teff, the shape of ``logg``.
    """
    rgb = giant_branch(isochrone)
    order = np.argsort(rgb["log_g"].to_numpy())
    return np.interp(logg, rgb["log_g"].to_numpy()[order], rgb["Teff"].to_numpy()[order])

