"""The lab's three checkpoint PDFs, each with exactly the figures the lab lists.

* checkpoint 1: the labels' corner plot; the unnormalized spectrum, continuum fit and
  normalized spectrum of ``NORMALIZATION_STAR``;
* checkpoint 2: model vs data of the training star ``MODEL_STAR`` over 16000-16100
  Angstrom; the cross-validation plot;
* checkpoint 3: the Kiel diagram with MIST isochrones; the corner plot of the PyMC posterior
  of the mystery spectrum (``MYSTERY_STAR``).

:data:`CHECKPOINTS` is the registry (checkpoint number -> its figure builders, in order;
:func:`checkpoint_figure` adds one). A builder takes :class:`CheckpointInputs` and a directory
and returns a :class:`~skcannon.report.html.Section` with one figure and its caption (naming
the star and the data source), or a note saying why the figure is missing. When a named star
is not in the data, a stated stand-in is drawn (which star, and why). The stars are those of
:mod:`skcannon.apogee.constants` (``NORMALIZATION_STAR``, ``MODEL_STAR``, ``MYSTERY_STAR``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from skcannon.apogee.constants import MODEL_STAR, MYSTERY_STAR, NORMALIZATION_STAR
from skcannon.plotting import model_vs_data_figure, star_normalization_figure
from skcannon.plotting.science import corner_figure
from skcannon.report.html import Section
from skcannon.report.science import ScienceInputs, _save, kiel_section, load_isochrones

__all__ = ["CHECKPOINTS", "MYSTERY_STAR", "CheckpointInputs", "checkpoint_figure",
           "checkpoint_filename", "checkpoint_sections", "write_checkpoints"]

#: Checkpoint number -> its figure builders, in the lab's order.
CHECKPOINTS: dict[int, list[Callable]] = {1: [], 2: [], 3: []}


def checkpoint_figure(number: int) -> Callable:
    """Register a figure builder of checkpoint ``number`` (a decorator).

    Parameters
    ----------
    number : int
        The checkpoint (a new number starts a new checkpoint).

    Returns
    -------
    callable
        The decorator; it returns the builder unchanged.
    """
    def register(builder: Callable) -> Callable:
        CHECKPOINTS.setdefault(number, []).append(builder)
        return builder
    return register


@dataclass
class CheckpointInputs:
    """What the checkpoint figures are drawn from.

    Attributes
    ----------
    science : ScienceInputs
        The model, training set (its ``validation``'s training half is searched for
        ``MODEL_STAR``), the read apStar spectra and their normalization, isochrones.
    training_source : str
        Where the training set came from, in words.
    cross_validation : tuple of (str, str) or None, default=None
        (figure file, what it shows and on which data) of the cross-validation plot.
    posterior : PosteriorOutputs or None, default=None
        The posterior of the mystery spectrum (its corner plot is drawn).
    posterior_source : str, default=""
        Where the posterior's spectrum came from, in words.
    """

    science: ScienceInputs
    training_source: str
    cross_validation: tuple[str, str] | None = None
    posterior: object | None = None
    posterior_source: str = ""


def checkpoint_filename(number: int, name: str | None = None) -> str:
    """The file name of checkpoint ``number``: ``lab2_cp<number>.pdf``, or with the student's
    name ``lab2_cp<number>_<Firstname>_<Lastname>.pdf``.

    Parameters
    ----------
    number : int
    name : str, default=None
        "Firstname Lastname" (spaces become underscores).

    Returns
    -------
    str
    """
    suffix = "_" + "_".join(name.split()) if name and name.strip() else ""
    return f"lab2_cp{number}{suffix}.pdf"


@checkpoint_figure(1)
def labels_corner(inputs: CheckpointInputs, directory: Path) -> Section:
    """Checkpoint 1: corner plot of the training sample's labels (with the cut thresholds)."""
    science = inputs.science
    if science.sample is None:
        return Section("Label corner plot", note="No training sample: no corner plot.")
    path = _save(corner_figure(science.sample, science.names, science.cuts), directory,
                 "cp1_corner.png")
    return Section("Label corner plot", figures=[(path, (
        f"Corner plot of the labels of the {len(science.sample)} training stars "
        f"({', '.join(science.names)}); dashed red lines: the selection's cuts. Data source: "
        f"{inputs.training_source}."))])


@checkpoint_figure(1)
def normalization(inputs: CheckpointInputs, directory: Path) -> Section:
    """Checkpoint 1: raw spectrum, continuum fit and normalized spectrum of
    ``NORMALIZATION_STAR`` (else a stated stand-in)."""
    science = inputs.science
    if not science.raw_spectra or science.normalized is None:
        return Section("Normalization", note="No apStar spectra were read: no figure.")
    ids = [s.apogee_id for s in science.raw_spectra]
    index = ids.index(NORMALIZATION_STAR) if NORMALIZATION_STAR in ids else 0
    spectrum = science.raw_spectra[index]
    note = "" if NORMALIZATION_STAR in ids else (
        f"Stand-in: the lab's star {NORMALIZATION_STAR} is not among the {len(ids)} apStar "
        f"spectra read, so {spectrum.apogee_id} (the first of them) is shown instead.")
    path = _save(star_normalization_figure(spectrum, science.normalized, index=index),
                 directory, "cp1_normalization.png")
    return Section("Normalization", note=note, figures=[(path, (
        f"{spectrum.apogee_id}: unnormalized apStar flux with the continuum pixels, the fitted "
        "per-chip pseudo-continuum, and the normalized spectrum with its 1-sigma band. Data "
        f"source: the APOGEE apStar file {Path(str(spectrum.path)).name}."))])


@checkpoint_figure(2)
def model_vs_data(inputs: CheckpointInputs, directory: Path) -> Section:
    """Checkpoint 2: model vs data of ``MODEL_STAR``, searched in the training half (the
    lab: "some of the objects in the training set"), at its reference labels, 16000-16100 A."""
    science = inputs.science
    if science.training is None:
        return Section("Model vs data", note="No training set: no figure.")
    rows = (science.validation.train_index if science.validation is not None
            else range(len(science.training)))
    ids = [str(science.training.ids[n]) for n in rows]
    k = ids.index(MODEL_STAR) if MODEL_STAR in ids else 0
    n = list(rows)[k]
    note = "" if ids[k] == MODEL_STAR else (
        f"Stand-in: the lab's star {MODEL_STAR} is not in this training set "
        f"({inputs.training_source}), so the training star {ids[k]} (the first of the "
        "training half) is shown instead.")
    labels = science.training.label_array(science.names)[n : n + 1]
    wavelength = science.training.wavelength
    path = _save(model_vs_data_figure(
        wavelength, science.training.flux[n], science.training.ivar[n],
        science.model.predict(labels)[0], title=f"{ids[k]} (training star)",
        model_label="model at its training labels"), directory, "cp2_model_vs_data.png")
    return Section("Model vs data", note=note, figures=[(path, (
        f"{ids[k]}: normalized spectrum with its 1-sigma band and the Cannon model at the "
        "star's training labels, 16000-16100 Angstrom; residuals below. Data source: "
        f"{inputs.training_source}."))])


@checkpoint_figure(2)
def cross_validation(inputs: CheckpointInputs, directory: Path) -> Section:
    """Checkpoint 2: the cross-validation plot (fitted vs reference labels)."""
    if inputs.cross_validation is None:
        return Section("Cross-validation", note="No cross-validation was run: no figure.")
    path, what = inputs.cross_validation
    return Section("Cross-validation", figures=[(path, what)])


@checkpoint_figure(3)
def kiel(inputs: CheckpointInputs, directory: Path) -> Section:
    """Checkpoint 3: the Kiel diagram with MIST isochrones."""
    isochrones, note = load_isochrones(inputs.science.isochrones)
    section = kiel_section(inputs.science, Path(directory), isochrones, note)
    if section is None:
        return Section("Kiel diagram", note="No cross-validation fit with TEFF, LOGG and "
                                            "FE_H: no Kiel diagram.")
    path, caption = section.figures[0]
    return Section("Kiel diagram", note=section.note, figures=[(path, (
        f"{caption} Data source: the labels fitted to the test half of the training set "
        f"({inputs.training_source})."))])


@checkpoint_figure(3)
def mystery_posterior(inputs: CheckpointInputs, directory: Path) -> Section:
    """Checkpoint 3: corner plot of the PyMC posterior of the mystery spectrum."""
    posterior = inputs.posterior
    if posterior is None:
        return Section("Posterior of the mystery spectrum",
                       note="No posterior was sampled (PyMC missing or no mystery spectrum).")
    flags = getattr(posterior, "fit_flags", [])
    return Section(
        f"Posterior of {posterior.star}",
        note=("The optimizer's fit of this star is flagged: " + "; ".join(flags)
              + ". The posterior may pile up on the prior's edge.") if flags else "",
        figures=[(str(posterior.corner), (
            f"{posterior.star}: corner plot of the PyMC (NUTS) posterior of its labels, "
            f"{posterior.chains} chains x {posterior.draws} draws; red: the optimizer's best "
            f"fit. Priors: {posterior.posterior.priors}. Data source: "
            f"{inputs.posterior_source}."))])


def checkpoint_sections(number: int, inputs: CheckpointInputs, directory: str | Path
                        ) -> list[Section]:
    """The sections of checkpoint ``number``: one per registered builder.

    Parameters
    ----------
    number : int
        A key of :data:`CHECKPOINTS`.
    inputs : CheckpointInputs
    directory : str or path-like
        Where the figures are saved.

    Returns
    -------
    list of Section
    """
    if number not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be one of {sorted(CHECKPOINTS)}, got {number}")
    Path(directory).mkdir(parents=True, exist_ok=True)
    return [builder(inputs, Path(directory)) for builder in CHECKPOINTS[number]]


def write_checkpoints(inputs: CheckpointInputs, directory: str | Path, *,
                      numbers=None, name: str | None = None) -> list[Path]:
    """Write the checkpoint PDFs (typeset by reportlab; figure PNGs beside them).

    Parameters
    ----------
    inputs : CheckpointInputs
    directory : str or path-like
        Where the PDFs go (e.g. ``OUTPUT/checkpoints``).
    numbers : iterable of int, default=None
        Which checkpoints (None: all of :data:`CHECKPOINTS`).
    name : str, default=None
        The student's "Firstname Lastname" (in the file names and under the title).

    Returns
    -------
    list of Path
        The PDFs written.
    """
    from skcannon.report.typeset import write_typeset_pdf

    directory = Path(directory)
    written = []
    for number in sorted(CHECKPOINTS) if numbers is None else numbers:
        sections = checkpoint_sections(number, inputs, directory)
        written.append(write_typeset_pdf(
            directory / checkpoint_filename(number, name), f"Lab 2, checkpoint {number}",
            sections, subtitle=name or ""))
    return written
