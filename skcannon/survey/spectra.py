"""Best-fit model spectra of a survey (``label_survey(..., save_model_spectra=True)``,
``skcannon survey --save-model-spectra``): one sealed HDF5 file beside each Parquet part
(``parts/part-NNNNNN-<key>.model.h5``), holding, for every fitted row of the part, the model
spectrum the fit compared with the data (shifted by the fitted RV, times the continuum when
the model fits one) and that continuum (ones otherwise), on the model's pixel grid, with the
row's APOGEE_ID, PATH and SPECTRUM. :func:`read_model_spectra` finds a star's spectra from the
survey's output directory (the files the summary names, each checked against its seal).

A re-run asked for model spectra recomputes every part whose model-spectra file is missing,
damaged or not its part's (:func:`model_spectra_problem`), so parts labelled by a run without
the option get their spectra. A ``visits=True`` run stores one model spectrum per fitted visit
(its star's labels, the visit's RV and continuum), its catalog row repeated, and the visit's
index in its file (``VISIT``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from skcannon.errors import BadFileError, SkcannonError
from skcannon.integrity import read_sealed_hdf5, write_sealed_hdf5

#: Format name and version of a part's model-spectra file, and its suffix.
MODEL_SPECTRA_FORMAT, MODEL_SPECTRA_VERSION = "skcannon-survey-model-spectra", 1
MODEL_SPECTRA_SUFFIX = ".model.h5"
_WHAT = "survey model-spectra file"


def model_spectra_path(part: str | Path) -> Path:
    """The model-spectra file of the Parquet part ``part`` (same name, other suffix).

    Parameters
    ----------
    part : str or path-like

    Returns
    -------
    Path
    """
    part = Path(part)
    return part.with_name(part.stem + MODEL_SPECTRA_SUFFIX)


def write_model_spectra(path: str | Path, key: str, table: pd.DataFrame, spectra: dict) -> Path:
    """Write a part's model spectra (sealed HDF5, atomically, replacing an old file).

    Parameters
    ----------
    path : str or path-like
    key : str  the part's chunk key
    table : DataFrame  the part's rows (APOGEE_ID, PATH, SPECTRUM)
    spectra : dict
        ``{"row": (n,) rows of table, "model": (n, P), "continuum": (n, P),
        "wavelength": (P,) or None}`` (:func:`skcannon.survey.chunk.label_chunk`); a visits
        run's also ``"visit": (n,)`` (:func:`skcannon.survey.visits.label_visits_chunk`).

    Returns
    -------
    Path
    """
    rows = np.asarray(spectra["row"], np.int64)
    arrays = {"ROW": rows,
              "APOGEE_ID": _bytes(table.APOGEE_ID.to_numpy()[rows]),
              "PATH": _bytes(table.PATH.to_numpy()[rows]),
              "SPECTRUM": table.SPECTRUM.to_numpy()[rows].astype(np.int64),
              "MODEL": np.asarray(spectra["model"], np.float32),
              "CONTINUUM": np.asarray(spectra["continuum"], np.float32)}
    if spectra.get("visit") is not None:                    # a visits run: one per visit
        arrays["VISIT"] = np.asarray(spectra["visit"], np.int64)
    if spectra.get("wavelength") is not None:
        arrays["WAVELENGTH"] = np.asarray(spectra["wavelength"], float)
    attrs = {"format": MODEL_SPECTRA_FORMAT, "format_version": MODEL_SPECTRA_VERSION,
             "key": key, "part_rows": len(table)}
    return write_sealed_hdf5(path, attrs, arrays, overwrite=True, compress=True)


def _bytes(values) -> np.ndarray:
    """Strings as a fixed-width UTF-8 bytes array (what HDF5 stores plainly)."""
    encoded = [str(v).encode("utf-8") for v in values]
    return np.array(encoded, dtype=f"S{max(map(len, encoded), default=1) or 1}")


def model_spectra_problem(part: Path, key: str, part_rows: int) -> str | None:
    """Why the model-spectra file of ``part`` cannot stand beside it, or None when it can.

    Parameters
    ----------
    part : Path  the Parquet part
    key : str  its chunk key
    part_rows : int  its number of rows

    Returns
    -------
    str or None
    """
    path = model_spectra_path(part)
    if not path.is_file():
        return f"its model spectra ({path.name}) are missing"
    try:
        attrs, _ = read_sealed_hdf5(path, expected_format=MODEL_SPECTRA_FORMAT,
                                    expected_version=MODEL_SPECTRA_VERSION, what=_WHAT)
    except BadFileError as exc:
        return f"its model spectra: {exc}"
    if attrs.get("key") != key or int(attrs.get("part_rows", -1)) != part_rows:
        return f"its model spectra ({path.name}) are another chunk's"
    return None


def read_model_spectra(output: str | Path, apogee_id: str | None = None) -> dict:
    """The best-fit model spectra a survey saved (``save_model_spectra=True``).

    Parameters
    ----------
    output : str or path-like
        The survey's output directory (its set of outputs is checked first,
        :func:`skcannon.survey.outputs.check_outputs`).
    apogee_id : str, default=None
        Only this star's rows (None: every fitted row).

    Returns
    -------
    dict
        ``APOGEE_ID``, ``PATH`` (str arrays, (n,)), ``SPECTRUM`` (index in its file) and
        ``CATALOG_ROW`` (row of ``survey.fits``) and ``VISIT`` (a ``visits=True`` run's
        visit index in its file, one spectrum per visit; -1 for a combined spectrum) (int
        arrays, (n,)); ``model`` and
        ``continuum`` (float32, (n, n_pixels): continuum times the model shifted by the fitted
        RV, and the continuum, ones without ``continuum_order``); ``wavelength``
        ((n_pixels,) Angstrom, or None for a model without a grid).

    Raises
    ------
    SkcannonError
        No complete set of outputs, no model spectra saved, or a file damaged (named).
    """
    from skcannon.survey.outputs import OUTPUT_FILES, check_outputs

    output = Path(output)
    check_outputs(output)
    summary = json.loads((output / OUTPUT_FILES[2]).read_text(encoding="utf-8"))
    listed = summary.get("model_spectra")
    if listed is None:
        raise SkcannonError(f"{output}: this survey saved no model spectra (run it with "
                            "--save-model-spectra)")
    found = [_read_one(output / entry["file"], int(entry["first_row"])) for entry in listed]
    merged = {name: np.concatenate([f[name] for f in found]) if found else np.zeros(0)
              for name in ("APOGEE_ID", "PATH", "SPECTRUM", "CATALOG_ROW", "VISIT", "model",
                           "continuum")}
    wavelength = next((f["wavelength"] for f in found if f["wavelength"] is not None), None)
    if apogee_id is not None:
        keep = merged["APOGEE_ID"] == str(apogee_id)
        merged = {name: values[keep] for name, values in merged.items()}
    return {**merged, "wavelength": wavelength}


def _read_one(path: Path, first_row: int) -> dict:
    """One model-spectra file's rows, their catalog rows from the part's first one."""
    _, arrays = read_sealed_hdf5(path, expected_format=MODEL_SPECTRA_FORMAT,
                                 expected_version=MODEL_SPECTRA_VERSION, what=_WHAT)
    return {"APOGEE_ID": np.char.decode(arrays["APOGEE_ID"], "utf-8").astype(object),
            "PATH": np.char.decode(arrays["PATH"], "utf-8").astype(object),
            "SPECTRUM": arrays["SPECTRUM"], "CATALOG_ROW": first_row + arrays["ROW"],
            "VISIT": arrays.get("VISIT", np.full(len(arrays["ROW"]), -1, np.int64)),
            "model": arrays["MODEL"], "continuum": arrays["CONTINUUM"],
            "wavelength": arrays.get("WAVELENGTH")}
