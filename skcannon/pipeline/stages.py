"""The main job's stages, each a function the ``skcannon`` commands call too.

select -> download (each file read once, by its validation) -> normalize (preprocessing once,
its intermediate arrays kept for the report) -> training set -> split + train + validate ->
fit -> posterior -> report. Stages take a :class:`JobConfig` or plain values and return what
later stages need; none reads a file an earlier stage has read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from skcannon.apogee.abundance_simulation import (
    WINDOW_MODEL_HIDDEN,
    WINDOW_MODEL_SOURCE,
    load_window_abundance_model,
)
from skcannon.apogee.archive import archive_url, data_dir
from skcannon.apogee.catalog import (
    ARCHIVE_CATALOGS,
    DEFAULT_CATALOG,
    format_cut_table,
    load_catalog_source,
    select_giants,
    write_selection,
)
from skcannon.apogee.download import DownloadReport, download_apstar
from skcannon.apogee.label_tables import dr12_giant_labels
from skcannon.apogee.mirror import ArchiveMirror, index_apstar_files
from skcannon.apogee.reader import ApStarSpectrum
from skcannon.data.arrays import open_dataset
from skcannon.data.build import NormalizedSpectra, build_dataset, default_preprocessor
from skcannon.data.dataset import SpectralDataset
from skcannon.data.simulate import noise_templates_from_regridded, simulate_spectra
from skcannon.errors import CatalogError, DownloadError, SkcannonError
from skcannon.evaluation import SplitValidation, find_outliers, repeated_kfold, split_validate
from skcannon.integrity import write_csv_atomic
from skcannon.labels import DEFAULT_LABELS, present_labels
from skcannon.model import Cannon, CannonRegressor
from skcannon.pipeline.config import JobConfig
from skcannon.plotting import one_to_one_figure, pull_figure, save_figure
from skcannon.report import Section, write_pdf, write_report

#: Outliers: test-half stars off by more than this many robust scatters.
OUTLIER_K = 3.0
#: Folds of the uncertainty calibration of the models the job and ``validate`` train (the
#: reported uncertainties then match the held-out scatter; see skcannon.inference.calibration).
CALIBRATION_FOLDS = 10


@dataclass
class DataStageResult:
    """What the data stage produced: the selection, the download and the spectra it read."""

    selection: pd.DataFrame
    cut_table: list[dict]
    download: DownloadReport
    spectra: list[ApStarSpectrum] = field(default_factory=list)
    summary: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    cuts: object | None = None               # the QualityCuts actually applied


def load_catalog(config: JobConfig, base_url: str, log: TextIO
                 ) -> tuple[pd.DataFrame, bool, list[str]]:
    """The catalog for the job, whether label cuts can apply to it, and notes.

    ``config.catalog`` is a path or URL, ``"skyserver"`` (SQL through astroquery),
    ``"allstar"``, or ``"allstarlite"``/None: the archive's allStarLite file (see
    :func:`skcannon.apogee.catalog.load_catalog_source`). When the archive's file is
    unreachable and a local mirror is in use, an index of the mirror's apStar files (ids,
    fields, SNR; no labels) stands in. The notes name the source and its ASPCAP version.
    """
    name = config.catalog or DEFAULT_CATALOG
    if name in ARCHIVE_CATALOGS:
        print(f"catalog: fetching {name} from {base_url}", file=log)
    try:
        frame = load_catalog_source(name, archive=base_url, fields=config.fields,
                                    data_dir=data_dir(config.data_dir),
                                    skyserver_url=config.skyserver_url)
    except (CatalogError, DownloadError) as exc:
        if config.mirror is None or name not in ARCHIVE_CATALOGS:
            raise
        note = (f"{name} catalog not available from the mirror ({exc}); using an index of the "
                f"apStar files in {config.mirror} instead: it has ids, fields and SNR but no "
                "ASPCAP labels, so the label cuts are not applied")
        print(f"note: {note}", file=log)
        return index_apstar_files(config.mirror), False, [note]
    note = (f"catalog: {frame.attrs['catalog_source']} (ASPCAP version "
            f"{frame.attrs.get('catalog_version', 'unknown')})")
    print(note, file=log)
    return frame, True, [note]


def select_stage(config: JobConfig, base_url: str, log: TextIO) -> DataStageResult:
    """Catalog -> cuts -> ``selection.csv`` (with each row's CATALOG_VERSION); a warning
    when the selected rows come from catalogs of different ASPCAP versions. The download is
    still to come."""
    frame, has_labels, notes = load_catalog(config, base_url, log)
    cuts, fields = config.cuts, config.fields
    if not has_labels:
        cuts = dataclasses.replace(cuts, require_labels=False)
        fields = None if config.mirror is not None else fields
    selection = select_giants(frame, fields=fields, cuts=cuts)
    cut_table = selection.attrs["cut_table"]
    print("\n" + format_cut_table(cut_table) + "\n", file=log)
    versions = selection.attrs["catalog_versions"]
    if len(versions) > 1:
        warning = (f"warning: the selection mixes catalog versions {', '.join(versions)}: "
                   "their labels differ (SkyServer holds ASPCAP synspec, the archive files "
                   "synspec_rev1); use one source")
        print(warning, file=log)
        notes = [*notes, warning]
    write_selection(selection, config.output / "selection.csv")
    return DataStageResult(selection, cut_table, DownloadReport(), notes=notes, cuts=cuts)


def download_stage(config: JobConfig, data: DataStageResult, base_url: str, log: TextIO
                   ) -> DataStageResult:
    """Download the selection's files; keep the spectra their validation read (no second
    read); write ``data_summary.csv``."""
    report = download_apstar(data.selection, archive=base_url, directory=config.data_dir,
                             n_workers=config.n_workers, progress=config.progress,
                             keep_spectra=True)
    print(report.summary(), file=log)
    rows, spectra = [], []
    for record in report.records:
        identity = {key: record[key] for key in ("apogee_id", "telescope", "field")}
        if record["status"] == "failed":
            rows.append({**identity, "status": "download failed", "problem": record["error"]})
            continue
        spectrum = report.spectra[record["path"]]
        spectra.append(spectrum)
        rows.append({**identity, "status": record["status"], "snr": spectrum.snr,
                     "bad_pixel_fraction": round(spectrum.bad_fraction, 4), "problem": ""})
    summary = pd.DataFrame(rows)
    write_csv_atomic(summary, config.output / "data_summary.csv", index=False)
    return dataclasses.replace(data, download=report, spectra=spectra, summary=summary)


def run_data_stage(config: JobConfig, log: TextIO | None = None) -> DataStageResult:
    """Select giants, download their apStar files (read once, by the download's validation).

    ``log``: where it reports (None: ``sys.stdout`` as it is at the call).

    With ``config.mirror`` a local directory (e.g. ``../shared/apogee``) is served over HTTP on
    127.0.0.1 and used as the archive. Writes ``selection.csv`` and ``data_summary.csv``.
    """
    log = sys.stdout if log is None else log
    config.output.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if config.mirror is not None:
            base = stack.enter_context(ArchiveMirror(config.mirror)).url
            print(f"archive: local mirror of {config.mirror} served at {base}", file=log)
        else:
            base = archive_url(config.archive)
            print(f"archive: {base}", file=log)
        data = select_stage(config, base, log)
        return download_stage(config, data, base, log)


def normalize_stage(config: JobConfig, data: DataStageResult, log: TextIO
                    ) -> tuple[SpectralDataset, NormalizedSpectra]:
    """The read spectra, masked, regridded and normalized once, as ``real_spectra.h5``."""
    if not data.spectra:
        raise SkcannonError("no spectra could be read: nothing to normalize")
    print(f"\nnormalize: {len(data.spectra)} spectra (mask, regrid to 7214 px, per-chip "
          "continuum)", file=log)
    records = data.download.records          # in selection order, as the spectra
    rows = [i for i, record in enumerate(records) if record["status"] != "failed"]
    skipped = [{"apogee_id": r["apogee_id"], "path": r["path"], "problem": r["error"]}
               for r in records if r["status"] == "failed"]
    real, view = build_dataset(data.spectra, data.selection.iloc[rows],
                               default_preprocessor(config.resources.continuum),
                               root=data_dir(config.data_dir), skipped=skipped)
    real.save(config.output / "real_spectra.h5", overwrite=True)
    return real, view


#: Fewest labelled real stars the job trains on; with fewer it simulates a training set.
MIN_REAL_TRAINING_STARS = 100


@dataclass
class TrainingSet:
    """The training set, its labels and where it came from (in words, for every output)."""

    dataset: SpectralDataset
    label_names: list[str]
    source: str


def training_set_stage(config: JobConfig, real: SpectralDataset, view: NormalizedSpectra,
                       log: TextIO) -> TrainingSet:
    """The selected stars with ASPCAP labels when there are at least
    ``MIN_REAL_TRAINING_STARS``; otherwise ``config.n_simulated`` spectra of the lab's five
    labels simulated at real DR12 giant labels (:func:`simulated_training_set`; said so in
    ``source``), with the noise shapes and masks of the real spectra (already regridded:
    nothing is read again)."""
    names = list(DEFAULT_LABELS)
    labelled = (real.labels[names].notna().all(axis=1).to_numpy()
                if set(names) <= set(real.labels.columns) else np.zeros(len(real), bool))
    if int(labelled.sum()) >= MIN_REAL_TRAINING_STARS:
        training = TrainingSet(real.subset(np.flatnonzero(labelled)), names,
                               f"real: {int(labelled.sum())} selected stars with ASPCAP labels")
    else:
        training = simulated_training_set(config, view, int(labelled.sum()))
    print(f"training set: {training.source}", file=log)
    return training


def simulated_training_set(config: JobConfig, view: NormalizedSpectra, n_labelled: int
                           ) -> TrainingSet:
    """SIMULATED spectra of the lab's five labels at real DR12 giant label combinations, SNR
    50-250: the published reference model with [Mg/Fe] and [Si/Fe] acting in their ASPCAP
    windows (:mod:`skcannon.apogee.abundance_simulation`)."""
    shared = config.resources
    generator = load_window_abundance_model(shared.reference_model, shared.windows)
    names = list(generator.label_names)
    table = dr12_giant_labels(shared.dr12_labels, [*names, WINDOW_MODEL_HIDDEN])
    table = table.sample(min(config.n_simulated, len(table)), random_state=config.seed)
    table = table.reset_index(drop=True)
    rng = np.random.default_rng(config.seed)
    table["SNR"] = rng.uniform(50, 250, len(table))
    X = simulate_spectra(generator, table, table.SNR.to_numpy(), rng,
                         noise_templates_from_regridded(view.regridded))
    dataset = SpectralDataset.from_spectra(
        generator.wavelength_, X, table, provenance={"simulated_from": WINDOW_MODEL_SOURCE})
    source = (f"simulated: {n_labelled} labelled real stars selected (fewer than "
              f"{MIN_REAL_TRAINING_STARS}), so {len(table)} spectra were SIMULATED at real DR12 "
              "giant labels (SNR 50-250, noise shapes and masks of the downloaded spectra) from "
              "the published 4-label reference model, its alpha response given to [Mg/Fe] in "
              "ASPCAP's Mg windows and to [Si/Fe] in its Si windows")
    return TrainingSet(dataset, names, source)


@dataclass
class ValidationOutputs:
    """The split validation, its figures (name -> file) and its outliers."""

    result: SplitValidation
    figures: dict[str, str]
    outliers: pd.DataFrame


def validate_stage(training: SpectralDataset, label_names: list[str], *, seed: int,
                   output_dir: Path, figures_dir: Path | None = None,
                   calibration_folds: int = CALIBRATION_FOLDS) -> ValidationOutputs:
    """Split into halves (``random_state=seed``), train on one, fit the other; write
    ``accuracy.csv`` to ``output_dir`` and the one-to-one and pull figures to ``figures_dir``
    (default ``output_dir``); ``calibration_folds`` of the model's uncertainty calibration (0:
    none, as ``checkpoint`` uses: its figures do not show uncertainties). Used by the main job,
    ``skcannon validate``, ``report`` and ``checkpoint``."""
    figures_dir = Path(figures_dir or output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    estimator = CannonRegressor(Cannon(label_names, calibration_folds=calibration_folds))
    result = split_validate(estimator, training.X, training.labels, random_state=seed,
                            wavelength=training.wavelength)
    write_csv_atomic(result.accuracy, output_dir / "accuracy.csv", index=False)
    snr = (training.labels["SNR"].to_numpy()[result.test_index]
           if "SNR" in training.labels else None)
    figures = {
        "one_to_one": str(save_figure(one_to_one_figure(
            result.reference, result.fit.labels, label_names, color=snr),
            figures_dir / "one_to_one.png")),
        "pulls": str(save_figure(pull_figure(result.pulls, label_names),
                                 figures_dir / "pulls.png")),
    }
    outliers = find_outliers(result.reference, result.fit, label_names, k=OUTLIER_K,
                             info=training.labels.iloc[result.test_index])
    return ValidationOutputs(result, figures, outliers)


#: Repeated k-fold on the real labelled set in the main job: repeats x folds (bench_real's).
REAL_CV_REPEATS, REAL_CV_FOLDS = 5, 2


@dataclass
class RealValidation:
    """Cross-validation of the default Cannon on real labelled spectra (the first yardstick).

    Attributes
    ----------
    source : str  the labelled file
    n_stars, n_pixels : int
    label_names : list of str
    summary : DataFrame  per label: bias, scatter, robust scatter and their sd over repeats
    figure : str  one-to-one figure of the first repeat's held-out predictions
    """

    source: str
    n_stars: int
    n_pixels: int
    label_names: list[str]
    summary: pd.DataFrame
    figure: str


def real_validation_stage(path: Path, output_dir: Path, figures_dir: Path, log: TextIO,
                          *, seed: int = 0) -> RealValidation | None:
    """Repeated k-fold cross-validation of the default :class:`CannonRegressor` on the real
    labelled spectra at ``path`` (identical folds to ``benchmarks/bench_real.py``); writes
    ``real_cross_validation.csv`` and ``real_one_to_one.png``. None (with a note) when the file
    is absent."""
    if not Path(path).is_file():
        print(f"real-data cross-validation: skipped ({path} not present)", file=log)
        return None
    real = open_dataset(path)
    names = present_labels(real.labels.columns)
    print(f"real-data cross-validation: {REAL_CV_REPEATS} x {REAL_CV_FOLDS}-fold on "
          f"{len(real)} real spectra ({path.name}), labels {', '.join(names)}", file=log)
    y = real.label_array(names)
    result = repeated_kfold(CannonRegressor(Cannon(names)), real.X, y, names,
                            n_repeats=REAL_CV_REPEATS, n_splits=REAL_CV_FOLDS, seed=seed)
    write_csv_atomic(result.summary, output_dir / "real_cross_validation.csv", index=False)
    print(f"real-data cross-validation ({path.name}, real spectra), held-out accuracy:",
          file=log)
    print(result.summary.to_string(index=False, float_format=lambda v: f"{v:.4g}"), file=log)
    figure = save_figure(one_to_one_figure(y, result.predictions[0], names),
                         figures_dir / "real_one_to_one.png")
    return RealValidation(str(path), len(real), real.flux.shape[1], names, result.summary,
                          str(figure))


def fit_stage(model, real: SpectralDataset, output: Path, log: TextIO):
    """Labels of the real spectra; ``labels.csv``. Returns the LabelFit and its table."""
    print(f"fit: labels of the {len(real)} real spectra", file=log)
    fit = model.infer_labels(real.X)
    table = fit.to_frame(ids=real.ids)
    write_csv_atomic(table, output / "labels.csv", index=False)
    return fit, table


@dataclass
class PosteriorOutputs:
    """A posterior and what was made of it."""

    star: str
    posterior: object                    # skcannon.inference.mcmc.Posterior
    comparison: pd.DataFrame
    corner: Path
    chains: int
    draws: int
    fit_flags: list[str] = field(default_factory=list)   # ON_BOUND / OUTSIDE_TRAINING, words
    source: str = ""                                     # the spectrum, in words


def fit_flags(fit, n: int) -> list[str]:
    """Why star ``n``'s optimizer fit cannot anchor a posterior: on a bound of the label
    range, outside the training range (empty: neither).

    Parameters
    ----------
    fit : LabelFit
    n : int
        The star's row.

    Returns
    -------
    list of str
    """
    flags = []
    if fit.on_bound[n]:
        flags.append("ON_BOUND: the best fit lies on a bound of the label range")
    if fit.outside_training[n]:
        flags.append("OUTSIDE_TRAINING: labels outside the training range")
    return flags


def mystery_spectrum(path: Path, continuum: Path) -> tuple[np.ndarray, str]:
    """The mystery apStar spectrum preprocessed exactly like the training spectra.

    Parameters
    ----------
    path : Path
        The apStar file (``SharedData.mystery``).
    continuum : Path
        The continuum pixel file.

    Returns
    -------
    X : ndarray of shape (1, 3, n_pixels)
        Normalized flux, inverse variance and mask on the model grid.
    star : str
        Its APOGEE_ID.
    """
    from skcannon.apogee.reader import read_apstar
    from skcannon.spectra import stack_spectra

    spectrum = read_apstar(path)
    X = default_preprocessor(continuum).fit_transform(
        stack_spectra(spectrum.flux, spectrum.ivar, pixmask=spectrum.pixmask))
    return X, spectrum.apogee_id


def posterior_stage(model, flux: np.ndarray, ivar: np.ndarray, *, best_labels: np.ndarray,
                    formal_sigma: np.ndarray, star: str, directory: Path, seed: int,
                    cv_scatter=None, reference_sigma=None,
                    prior: str = "uniform", likelihood: str = "quadratic",
                    sampler: str | None = None, chains: int = 4,
                    draws: int = 1000, tune: int = 1000, quiet: bool = False,
                    corner_name: str | None = None, flags: list[str] | None = None,
                    source: str = "", options: dict | None = None,
                    best_rv: float = np.nan) -> PosteriorOutputs:
    """NUTS posterior of one normalized spectrum (``flux``, ``ivar`` on the model grid),
    started at the optimizer's best fit (``best_labels``, with its formal uncertainties
    ``formal_sigma``, both shape (n_labels,)); corner plot and the comparison of
    uncertainties; ``flags`` (:func:`fit_flags`) and ``source`` (the spectrum, in words) are
    kept for the report. ``options``: CannonPosterior's ``fit_rv``, ``rv_bounds``,
    ``continuum_order``, ``fixed`` (the corner plot then shows the sampled variables, the
    fit's ``best_rv`` marked). Used by the main job and ``skcannon posterior``."""
    import warnings

    from skcannon.inference.mcmc import (
        CannonPosterior,
        posterior_comparison,
        posterior_corner_figure,
    )

    names = list(model.label_names)
    nuts = CannonPosterior(model, prior=prior, likelihood=likelihood, sampler=sampler,
                           **(options or {}))
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        posterior = nuts.sample(flux, ivar, draws=draws, tune=tune, chains=chains, seed=seed,
                                initial=best_labels)
    comparison = posterior_comparison(names, posterior, formal_sigma, cv_scatter,
                                      reference_sigma, getattr(model, "calibration_", None))
    best = dict(zip(names, np.ravel(best_labels), strict=True), RV=best_rv)
    corner = save_figure(posterior_corner_figure(posterior, nuts.sampled,
                                                 [best[n] for n in nuts.sampled]),
                         Path(directory) / (corner_name or f"posterior_{star}.png"))
    return PosteriorOutputs(star, posterior, comparison, corner, chains, draws,
                            list(flags or []), source)


def report_stage(directory: Path, title: str, sections: list[Section],
                 summary: pd.DataFrame | None) -> Path:
    """``index.html`` and ``report.pdf`` in ``directory``; returns the HTML page."""
    page = write_report(directory, title, sections, summary=summary)
    write_pdf(directory / "report.pdf", sections, summary=summary, html_page=page, title=title)
    return page
