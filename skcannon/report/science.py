"""All the mission's figures and numbers for a trained model, gathered as report sections.

Used by ``skcannon report`` and the main job. Every figure is a real PNG file; every number
says what it was measured on. Each section has its own function; :func:`science_sections`
draws them all. Nothing here reads spectra or preprocesses them: the normalization diagnostic is
drawn from the arrays the preprocessing kept (:class:`skcannon.data.build.NormalizedSpectra`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from skcannon.apogee.windows import load_element_windows, window_enrichment
from skcannon.data.isochrones import IsochroneNotFound, load_isochrone, teff_on_giant_branch
from skcannon.labels import format_labels
from skcannon.plotting import model_vs_data_figure, save_figure, star_normalization_figure
from skcannon.plotting.science import (
    corner_figure,
    gradient_figure,
    kiel_figure,
    scatter_figure,
    sequence_figure,
)
from skcannon.report.html import Section

#: Label -> the elements whose windows its gradient is compared with.
WINDOW_ELEMENTS = {"MG_FE": ["Mg"], "SI_FE": ["Si"], "ALPHA_M": ["Mg", "Si"]}
#: The isochrones of the Kiel diagram: ([Fe/H], age in Gyr).
KIEL_ISOCHRONES = ((0.0, 6.0), (-1.0, 6.0))


@dataclass
class ScienceInputs:
    """What the figures are drawn from (anything may be missing; its figure is then skipped
    with a note saying why).

    Attributes
    ----------
    model : Cannon
        Fitted, with ``wavelength_``.
    training : SpectralDataset, default=None
        The set the model was trained on.
    validation : SplitValidation, default=None
        The split validation of the model (its test half).
    real : SpectralDataset, default=None
        Real normalized spectra.
    real_fit : LabelFit, default=None
        Fitted labels of ``real``.
    raw_spectra : list of ApStarSpectrum, default=[]
        The read apStar spectra of the real stars.
    normalized : NormalizedSpectra, default=None
        ``raw_spectra`` through the preprocessing.
    selection : DataFrame, default=None
        The selected catalog rows.
    cuts : QualityCuts, default=None
        The selection's quality cuts (thresholds drawn on the corner plot).
    windows : Path, default=None
        The ASPCAP element-window file (``aspcap_l31c_masks.npy``).
    isochrones : Path, default=None
        Directory of MIST CSV or ``.iso`` files.
    normalization_star : str, default=None
        APOGEE_ID of the star of the normalization figure (None: the first one).
    model_star : str, default=None
        APOGEE_ID of the test-half star of the model-vs-data figure (None: the first one).
    training_note : str, default=""
        Note shown with the label distribution.
    """

    model: object                                   # fitted Cannon with wavelength_
    training: object | None = None                  # SpectralDataset the model was trained on
    validation: object | None = None                # SplitValidation
    real: object | None = None                      # SpectralDataset of real normalized spectra
    real_fit: object | None = None                  # LabelFit of ``real``
    raw_spectra: list = field(default_factory=list)  # ApStarSpectrum of the real stars
    normalized: object | None = None               # NormalizedSpectra of ``raw_spectra``
    selection: pd.DataFrame | None = None
    cuts: object | None = None                      # QualityCuts
    windows: Path | None = None                     # aspcap_l31c_masks.npy
    isochrones: Path | None = None                  # directory of MIST CSV / .iso files
    normalization_star: str | None = None
    model_star: str | None = None
    training_note: str = ""

    @property
    def names(self) -> list[str]:
        """The model's label names."""
        return list(self.model.label_names)

    @property
    def sample(self) -> pd.DataFrame | None:
        """The training sample's labels (None without a training set)."""
        return self.training.labels if self.training is not None else None

    def median_labels(self) -> np.ndarray:
        """The sample's median labels (the model's label offsets without a sample).

        Returns
        -------
        ndarray of shape (n_labels,)
        """
        sample = self.sample
        return self.model.scaling_.offsets if sample is None else \
            sample[self.names].median().to_numpy()


#: Real stars drawn in the model-vs-data section at most: a job over a few hundred stars would
#: otherwise fill the report (and its PDF) with hundreds of near-identical figures.
MAX_REAL_STAR_FIGURES = 8


def _save(figure, directory: Path, name: str) -> str:
    return str(save_figure(figure, directory / name))


def corner_section(inputs: ScienceInputs, directory: Path) -> Section | None:
    """1. Corner plot of the sample's labels with the cut thresholds.

    Parameters
    ----------
    inputs : ScienceInputs
    directory : Path
        Where the figure is saved (``corner.png``).

    Returns
    -------
    Section or None
        None without a training sample.
    """
    if inputs.sample is None:
        return None
    return Section(
        "Label distribution", "Corner plot of the training sample's labels; dashed red lines: "
        "the selection's cut thresholds (TEFF max, LOGG max, FE_H min).",
        figures=[(_save(corner_figure(inputs.sample, inputs.names, inputs.cuts), directory,
                        "corner.png"), "Labels of the training sample.")],
        note=inputs.training_note)


def star_to_show(ids: list[str], wanted: str | None, among: str) -> tuple[int, str]:
    """Which of ``ids`` a figure of one star shows: ``wanted``, else the first, said in a note.

    Parameters
    ----------
    ids : list of str
        The stars that can be shown (APOGEE_IDs), at least one.
    wanted : str or None
        The star asked for (None: no wish, the first is shown without a note).
    among : str
        What ``ids`` are, for the note (e.g. ``"the test-half stars"``).

    Returns
    -------
    index : int
        Position in ``ids`` of the star shown.
    note : str
        "" when ``wanted`` is shown or none was asked for; else that it was not found among
        ``ids`` and which star is shown instead.
    """
    if wanted in ids:
        return ids.index(wanted), ""
    note = f"{wanted} is not among {among}; showing {ids[0]} instead." if wanted else ""
    return 0, note


def normalization_section(inputs: ScienceInputs, directory: Path) -> Section | None:
    """2. Normalization diagnostic of the named star (else the first one, with a note).

    Parameters
    ----------
    inputs : ScienceInputs
    directory : Path
        Where the figure is saved (``normalization_<APOGEE_ID>.png``).

    Returns
    -------
    Section or None
        None without raw and normalized spectra.
    """
    if not inputs.raw_spectra or inputs.normalized is None:
        return None
    ids = [s.apogee_id for s in inputs.raw_spectra]
    index, note = star_to_show(ids, inputs.normalization_star, "the downloaded spectra")
    spectrum = inputs.raw_spectra[index]
    figure = star_normalization_figure(spectrum, inputs.normalized, index=index)
    return Section("Normalization", note=note, figures=[(
        _save(figure, directory, f"normalization_{spectrum.apogee_id}.png"),
        f"{spectrum.apogee_id}: raw flux with continuum pixels (orange), the fitted per-chip "
        "pseudo-continuum, and the normalized flux with its 1-sigma band.")])


def model_vs_data_section(inputs: ScienceInputs, directory: Path) -> Section | None:
    """3. A training-half star at its training labels; real stars at their fitted labels
    (at most :data:`MAX_REAL_STAR_FIGURES`, see :func:`real_stars_to_show`).

    Parameters
    ----------
    inputs : ScienceInputs
    directory : Path
        Where the figures are saved.

    Returns
    -------
    Section or None
        None when there is no figure to draw.
    """
    model, figures, note = inputs.model, [], ""
    if inputs.validation is not None and inputs.training is not None:
        rows = inputs.validation.train_index     # the lab: "objects in the training set"
        ids = inputs.training.ids[rows]
        k, note = star_to_show(list(ids), inputs.model_star, "the training-half stars")
        n = rows[k]
        labels = inputs.training.label_array(inputs.names)[n : n + 1]
        figures.append((_save(model_vs_data_figure(
            inputs.training.wavelength, inputs.training.flux[n], inputs.training.ivar[n],
            model.predict(labels)[0],
            title=f"{ids[k]} (training half): model at its training labels",
            model_label="model at training labels"), directory, "model_vs_data_reference.png"),
            f"{ids[k]}: normalized data with its 1-sigma band and the model predicted from its "
            "training labels, 16000-16100 Angstrom; residuals below."))
    if inputs.real is not None and inputs.real_fit is not None:
        shown = real_stars_to_show(inputs.real_fit.reduced_chi2)
        if len(shown) < len(inputs.real):
            note = " ".join(filter(None, [note, (
                f"{len(shown)} of the {len(inputs.real)} real stars are drawn: those with "
                "the largest reduced chi^2, the ones worth a look; every star's labels are "
                "in labels.csv.")]))
        predicted = model.predict(inputs.real_fit.labels[shown])
        for k, n in enumerate(shown):
            star = inputs.real.ids[n]
            figures.append((_save(model_vs_data_figure(
                inputs.real.wavelength, inputs.real.flux[n], inputs.real.ivar[n], predicted[k],
                title=f"{star}: model at fitted labels", model_label="model at fitted labels"),
                directory, f"model_vs_data_{star}.png"),
                f"{star} (real DR17 spectrum): data and the model at its fitted labels."))
    return Section("Model vs data", figures=figures, note=note) if figures else None


def real_stars_to_show(reduced_chi2: np.ndarray, most: int = MAX_REAL_STAR_FIGURES
                       ) -> np.ndarray:
    """Indices of the real stars the report draws: all of them up to ``most``, else the
    ``most`` with the largest reduced chi^2 (unfitted ones, NaN, last), in input order.

    Parameters
    ----------
    reduced_chi2 : ndarray of shape (n_stars,)
    most : int, default=MAX_REAL_STAR_FIGURES
        Stars drawn at most (8).

    Returns
    -------
    ndarray of int, shape (min(n_stars, most),)
        Sorted indices.
    """
    n = len(reduced_chi2)
    if n <= most:
        return np.arange(n)
    worst = np.argsort(np.where(np.isfinite(reduced_chi2), -reduced_chi2, np.inf),
                       kind="stable")[:most]
    return np.sort(worst)


def window_table(inputs: ScienceInputs, gradient: np.ndarray, windows: dict | None,
                 numbers: dict) -> pd.DataFrame:
    """Do the top-100 ``|gradient|`` pixels of each abundance fall in its element's windows
    more often than by chance? Fills ``numbers`` with the fractions.

    Parameters
    ----------
    inputs : ScienceInputs
    gradient : ndarray of shape (n_labels, n_pixels)
        Gradient spectra at one point.
    windows : dict of str to ndarray of bool, shape (n_pixels,), or None
        Element -> window mask; None: an empty table.
    numbers : dict
        Receives ``window_fraction_<LABEL>_<element>`` per row.

    Returns
    -------
    DataFrame
        One row per (label, element) of :data:`WINDOW_ELEMENTS`:
        :func:`skcannon.apogee.windows.window_enrichment`'s result.
    """
    rows = []
    model, names = inputs.model, inputs.names
    for name in names if windows is not None else []:
        for element in WINDOW_ELEMENTS.get(name, []):
            result = window_enrichment(gradient[names.index(name)], windows[element],
                                       model.pixel_mask_, top_n=100)
            rows.append({"label": name, "element windows": element, **result})
            numbers[f"window_fraction_{name}_{element}"] = result["fraction"]
    return pd.DataFrame(rows)


def gradient_section(inputs: ScienceInputs, directory: Path, numbers: dict) -> Section:
    """4. Gradient spectra with the Mg and Si windows, s^2, and the window-enrichment table.

    Parameters
    ----------
    inputs : ScienceInputs
    directory : Path
        Where the figures are saved (``gradients.png``, ``scatter.png``).
    numbers : dict
        Receives the window fractions (:func:`window_table`).

    Returns
    -------
    Section
    """
    model = inputs.model
    windows, note = None, ""
    if model.wavelength_ is None:
        note = ("The model records no wavelength grid (trained from bare arrays): figures are "
                "drawn on the pixel index and no element windows can be placed.")
    elif inputs.windows is not None and Path(inputs.windows).is_file():
        windows = load_element_windows(inputs.windows, model.wavelength_)
    else:
        note = (f"The ASPCAP element windows ({inputs.windows or 'no file given'}) were not "
                "found, so no Mg/Si windows are shown and no window table is computed.")
    point = inputs.median_labels()
    table = window_table(inputs, model.gradient(point[None])[0], windows, numbers)
    shaded = ("ASPCAP element windows shaded on the element panels. The table answers whether "
              "the 100 pixels with the largest |gradient| fall in the element's windows more "
              "often than by chance." if windows is not None else "")
    return Section(
        "Gradient spectra and intrinsic scatter",
        f"df/dlabel at the sample's median labels ({format_labels(inputs.names, point)}). "
        + shaded, note=note,
        tables=[(table, "Top-100 |gradient| pixels in element windows vs chance")]
        if len(table) else [],
        figures=[(_save(gradient_figure(model, point, windows), directory, "gradients.png"),
                  "Gradient spectra, one panel per label, chips separated."),
                 (_save(scatter_figure(model, windows), directory, "scatter.png"),
                  "Intrinsic variance s^2 per pixel (s on the right axis)"
                  + (" with the Mg and Si windows."
                                                     if windows is not None else "."))])


def load_isochrones(directory: Path | None) -> tuple[dict[str, pd.DataFrame], str]:
    """The Kiel diagram's isochrones (:data:`KIEL_ISOCHRONES`) by legend label, and a note on
    any that is missing.

    Parameters
    ----------
    directory : Path or None
        Directory of MIST files (:func:`skcannon.data.isochrones.load_isochrone`).

    Returns
    -------
    isochrones : dict of str to DataFrame
    note : str
        Why the last missing isochrone is missing ("" when none is).
    """
    isochrones, note = {}, ""
    for feh, age in KIEL_ISOCHRONES:
        try:
            isochrones[f"MIST {age:g} Gyr, [Fe/H] = {feh:+.1f}"] = load_isochrone(
                feh, age, directory)
        except IsochroneNotFound as exc:
            note = str(exc)
    return isochrones, note


def kiel_section(inputs: ScienceInputs, directory: Path, isochrones: dict, note: str
                 ) -> Section | None:
    """5. Kiel diagram of the test half's fitted labels with MIST isochrones.

    Parameters
    ----------
    inputs : ScienceInputs
    directory : Path
        Where the figure is saved (``kiel.png``).
    isochrones : dict of str to DataFrame
        From :func:`load_isochrones`.
    note : str
        Shown with the figure.

    Returns
    -------
    Section or None
        None without a validation, or without TEFF, LOGG and FE_H among the labels.
    """
    names = inputs.names
    if inputs.validation is None or not {"TEFF", "LOGG", "FE_H"} <= set(names):
        return None
    fitted = inputs.validation.fit.labels
    i_t, i_g, i_f = names.index("TEFF"), names.index("LOGG"), names.index("FE_H")
    return Section("Kiel diagram", note=note, figures=[(_save(kiel_figure(
        fitted[:, i_t], fitted[:, i_g], fitted[:, i_f], isochrones,
        title="fitted labels of the test half"), directory, "kiel.png"),
        "log g vs Teff of the fitted labels (Teff increasing to the left, log g downward), "
        "coloured by fitted [Fe/H], with MIST v1.2 isochrones.")])


def giant_branch_teffs(inputs: ScienceInputs, isochrones: dict, loggs: np.ndarray
                       ) -> tuple[np.ndarray, str]:
    """Teff along the giant branch at ``loggs``, and how it was obtained: the solar MIST
    6 Gyr isochrone when loaded, else a linear fit to the training sample.

    Parameters
    ----------
    inputs : ScienceInputs
    isochrones : dict of str to DataFrame
        From :func:`load_isochrones`.
    loggs : ndarray of shape (n,)

    Returns
    -------
    teff : ndarray of shape (n,)
    how : str
        How ``teff`` was obtained, for the caption.
    """
    solar = "MIST 6 Gyr, [Fe/H] = +0.0"
    if solar in isochrones:
        return (teff_on_giant_branch(isochrones[solar], loggs),
                "Teff from the MIST 6 Gyr [Fe/H] = 0 giant branch")
    sample = inputs.sample
    fit_t = np.polyfit(sample["LOGG"], sample["TEFF"], 1) if sample is not None \
        else np.array([300.0, 3950.0])
    return (np.polyval(fit_t, loggs), "Teff from a linear fit to the training giants: "
            f"Teff = {fit_t[0]:.0f} log g + {fit_t[1]:.0f}")


def within_training(model, labels: np.ndarray) -> np.ndarray:
    """Which label vectors lie inside the training set (the cutoff the spectra sequences use):
    inside the convex hull of the training labels, or, for a model file without one, inside
    every label's training range.

    Parameters
    ----------
    model : Cannon
        Fitted (its ``state_.inside_training`` judges the rows).
    labels : ndarray of shape (n, n_labels)

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    return np.asarray(model.state_.inside_training(np.asarray(labels, dtype=float)), dtype=bool)


def _inside_sequence(model, labels: np.ndarray, values: np.ndarray, name: str
                     ) -> tuple[np.ndarray, np.ndarray, str]:
    """The points of a sequence inside the training range, and a sentence on those dropped."""
    inside = within_training(model, labels)
    if inside.all():
        return labels, values, "All points lie inside the training label range."
    dropped = ", ".join(f"{v:g}" for v in values[~inside])
    return labels[inside], values[inside], (
        f"Not drawn: {name} = {dropped}, outside the training set (the model would "
        "extrapolate there).")


def sequence_section(inputs: ScienceInputs, directory: Path, isochrones: dict) -> Section:
    """6. Model spectra along [Fe/H] and along the giant branch, only where the labels lie
    inside the training range (:func:`within_training`; the points left out are named).

    Parameters
    ----------
    inputs : ScienceInputs
    directory : Path
        Where the figures are saved (``sequence_feh.png``, ``sequence_giant_branch.png``).
    isochrones : dict of str to DataFrame
        From :func:`load_isochrones`.

    Returns
    -------
    Section
    """
    names, model = inputs.names, inputs.model
    base = dict(zip(names, inputs.median_labels(), strict=True))

    def at(values: dict) -> np.ndarray:
        return np.array([values[n] for n in names])

    fehs = np.linspace(-1.0, 0.5, 7)
    labels_a, fehs, said_a = _inside_sequence(model, np.array(
        [at(base | {"TEFF": 4700.0, "LOGG": 2.5, "FE_H": f}) for f in fehs]), fehs, "[Fe/H]")
    loggs = np.linspace(3.5, 0.5, 7)
    teffs, how = giant_branch_teffs(inputs, isochrones, loggs)
    labels_b, loggs, said_b = _inside_sequence(model, np.array(
        [at(base | {"TEFF": t, "LOGG": g, "FE_H": 0.0}) for t, g in zip(teffs, loggs,
                                                                         strict=True)]),
        loggs, "log g")
    figures = []
    if len(labels_a):
        figures.append((_save(sequence_figure(
            model, labels_a, fehs, "[Fe/H]", title="[Fe/H] sequence at Teff 4700 K, log g 2.5"),
            directory, "sequence_feh.png"),
            f"Model spectra, 16000-16200 Angstrom, offset and coloured by [Fe/H]. {said_a}"))
    if len(labels_b):
        figures.append((_save(sequence_figure(
            model, labels_b, loggs, "log g", title=f"giant branch at [Fe/H] = 0 ({how})"),
            directory, "sequence_giant_branch.png"),
            f"Model spectra along the giant branch; {how}. {said_b}"))
    return Section("Spectra sequences", figures=figures,
                   note="" if figures else f"{said_a} {said_b}")


def science_sections(inputs: ScienceInputs, directory: str | Path) -> tuple[list[Section], dict]:
    """Draw every figure into ``directory``; return report sections (in the mission's order:
    labels, normalization, model vs data, gradients, Kiel diagram, sequences) and headline
    numbers.

    Parameters
    ----------
    inputs : ScienceInputs
    directory : str or path-like
        Where the figures are saved.

    Returns
    -------
    sections : list of Section
        The sections that could be drawn.
    numbers : dict
        Headline numbers (``window_fraction_<LABEL>_<element>``).
    """
    directory = Path(directory)
    numbers: dict = {}
    isochrones, note = load_isochrones(inputs.isochrones)
    sections = [corner_section(inputs, directory), normalization_section(inputs, directory),
                model_vs_data_section(inputs, directory),
                gradient_section(inputs, directory, numbers),
                kiel_section(inputs, directory, isochrones, note),
                sequence_section(inputs, directory, isochrones)]
    return [s for s in sections if s is not None], numbers


