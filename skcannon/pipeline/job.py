"""The main job, stage by stage: select -> download -> read (later: normalize, train, validate).

Each stage is a function over library calls; the CLI's ``run`` command only parses options and
calls :func:`run_main_job`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import pandas as pd

from skcannon.apogee.archive import allstar_relpath, archive_url, data_dir, join_url
from skcannon.apogee.catalog import (
    QualityCuts,
    format_cut_table,
    query_skyserver,
    read_catalog,
    select_giants,
    write_selection,
)
from skcannon.apogee.constants import DEFAULT_FIELDS
from skcannon.apogee.download import DownloadReport, download_apstar
from skcannon.apogee.mirror import ArchiveMirror, index_apstar_files
from skcannon.apogee.reader import read_apstar
from skcannon.errors import CatalogError, DownloadError, SkcannonError
from skcannon.labels import DEFAULT_LABELS


@dataclass
class DataStageResult:
    """What the data stage produced."""

    selection: pd.DataFrame
    cut_table: list[dict]
    download: DownloadReport
    spectra: list = field(default_factory=list)
    read_failures: list[dict] = field(default_factory=list)
    summary: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)


def load_catalog_for_job(
    catalog: str | None, base_url: str, directory: Path, mirror_root: Path | None,
    fields: Sequence[str] | None, log: TextIO,
) -> tuple[pd.DataFrame, bool, list[str]]:
    """The catalog for the job and whether label cuts can apply to it.

    ``catalog`` is a path or URL, ``"skyserver"`` (SQL through astroquery), or None: then the
    allStar file at the archive, and, when that is unreachable and a local mirror is in use, an
    index of the mirror's apStar files (ids, fields, SNR; no labels).
    """
    notes: list[str] = []
    if catalog == "skyserver":
        return query_skyserver(fields or DEFAULT_FIELDS), True, notes
    if catalog:
        return read_catalog(catalog, data_dir=directory), True, notes
    url = join_url(base_url, allstar_relpath())
    try:
        print(f"catalog: fetching {url}", file=log)
        return read_catalog(url, data_dir=directory), True, notes
    except (CatalogError, DownloadError) as exc:
        if mirror_root is None:
            raise
        notes.append(f"allStar catalog not available from the mirror ({exc}); using an index of "
                     f"the apStar files in {mirror_root} instead: it has ids, fields and SNR but "
                     "no ASPCAP labels, so the label cuts are not applied")
        print(f"note: {notes[-1]}", file=log)
        return index_apstar_files(mirror_root), False, notes


def run_data_stage(
    catalog: str | None = None,
    archive: str | None = None,
    directory: str | Path | None = None,
    fields: Sequence[str] | None = DEFAULT_FIELDS,
    cuts: QualityCuts | None = None,
    output: str | Path = "skcannon-output",
    mirror_root: str | Path | None = None,
    n_workers: int = 4,
    progress: bool = True,
    log: TextIO = sys.stdout,
) -> DataStageResult:
    """Select giants, download their apStar files and read them.

    With ``mirror_root`` a local directory (e.g. ``../shared/apogee``) is served over HTTP on
    127.0.0.1 and used as the archive. Writes ``selection.csv`` and ``data_summary.csv`` to
    ``output``.
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    directory = data_dir(directory)
    cuts = cuts or QualityCuts()
    with contextlib.ExitStack() as stack:
        if mirror_root is not None:
            mirror_root = Path(mirror_root)
            base = stack.enter_context(ArchiveMirror(mirror_root)).url
            print(f"archive: local mirror of {mirror_root} served at {base}", file=log)
        else:
            base = archive_url(archive)
            print(f"archive: {base}", file=log)
        frame, has_labels, notes = load_catalog_for_job(
            catalog, base, directory, mirror_root, fields, log)
        if not has_labels:
            cuts = dataclasses.replace(cuts, require_labels=False)
            fields = None if mirror_root is not None else fields
        selection = select_giants(frame, fields=fields, cuts=cuts)
        cut_table = selection.attrs["cut_table"]
        print("\n" + format_cut_table(cut_table) + "\n", file=log)
        write_selection(selection, output / "selection.csv")
        report = download_apstar(selection, archive=base, directory=directory,
                                 n_workers=n_workers, progress=progress)
        print(report.summary(), file=log)
    spectra, failures, rows = [], [], []
    for record in report.records:
        if record["status"] == "failed":
            rows.append({**_identity(record), "status": "download failed",
                         "problem": record["error"]})
            continue
        try:
            spectrum = read_apstar(record["path"])
        except SkcannonError as exc:
            failures.append({**_identity(record), "problem": str(exc)})
            rows.append({**_identity(record), "status": "read failed", "problem": str(exc)})
            continue
        spectra.append(spectrum)
        rows.append({**_identity(record), "status": record["status"], "snr": spectrum.snr,
                     "bad_pixel_fraction": round(spectrum.bad_fraction, 4), "problem": ""})
    summary = pd.DataFrame(rows)
    summary.to_csv(output / "data_summary.csv", index=False)
    return DataStageResult(selection, cut_table, report, spectra, failures, summary, notes)


def _identity(record: dict) -> dict:
    return {"apogee_id": record["apogee_id"], "telescope": record["telescope"],
            "field": record["field"]}


@dataclass
class JobResult:
    """What the main job produced."""

    data: DataStageResult
    training_source: str
    accuracy: pd.DataFrame
    star_labels: pd.DataFrame
    summary: pd.DataFrame
    report: Path


#: Fewest labelled real stars the job trains on; with fewer it simulates a training set.
MIN_REAL_TRAINING_STARS = 100


def run_main_job(
    shared: str | Path = "../shared",
    catalog: str | None = None,
    archive: str | None = None,
    directory: str | Path | None = None,
    fields: Sequence[str] | None = DEFAULT_FIELDS,
    cuts: QualityCuts | None = None,
    output: str | Path = "skcannon-output",
    mirror_root: str | Path | None = None,
    n_workers: int = 4,
    progress: bool = True,
    seed: int = 42,
    n_simulated: int = 1880,
    folds: int = 3,
    log: TextIO = sys.stdout,
) -> JobResult:
    """select -> download -> normalize -> split -> train -> cross-validate -> fit -> report.

    Training set: the selected stars with ASPCAP labels when there are at least
    ``MIN_REAL_TRAINING_STARS`` of them; otherwise (as offline against ../shared, which holds
    no labelled spectra) ``n_simulated`` spectra simulated from the published reference model
    at real DR12 giant labels, said so in the summary and the report.
    """
    import numpy as np

    from skcannon.apogee.label_tables import dr12_giant_labels
    from skcannon.apogee.reference import REFERENCE_LABELS, load_reference_model
    from skcannon.data.build import prepare_dataset
    from skcannon.data.dataset import SpectralDataset
    from skcannon.data.simulate import noise_templates, simulate_spectra
    from skcannon.evaluation import find_outliers, split_validate
    from skcannon.plotting import one_to_one_figure, pull_figure, save_figure
    from skcannon.report import ScienceInputs, science_sections, write_pdf
    from skcannon.report.html import Section, write_report

    shared = Path(shared)
    output = Path(output)
    continuum = shared / "apogee" / "continuum" / "cannon_cont_pixels_apogee.npz"
    data = run_data_stage(catalog, archive, directory, fields, cuts, output, mirror_root,
                          n_workers, progress, log)
    if not data.spectra:
        raise SkcannonError("no spectra could be read: nothing to normalize")
    figures_dir = output / "report"
    figures_dir.mkdir(parents=True, exist_ok=True)

    print(f"\nnormalize: {len(data.spectra)} spectra (mask, regrid to 7214 px, per-chip "
          "continuum)", file=log)
    real, problems = prepare_dataset(data.selection, continuum, directory=directory)
    real.save(output / "real_spectra.h5", overwrite=True)
    labelled = real.labels[list(DEFAULT_LABELS)].notna().all(axis=1) \
        if all(c in real.labels for c in DEFAULT_LABELS) else np.zeros(len(real), bool)
    if int(np.sum(labelled)) >= MIN_REAL_TRAINING_STARS:
        training = real.subset(np.flatnonzero(labelled))
        label_names = list(DEFAULT_LABELS)
        source = f"real: {len(training)} selected stars with ASPCAP labels"
    else:
        reference = load_reference_model(shared / "apogee" / "reference" / "cannon_apokasc_dr12")
        label_names = list(REFERENCE_LABELS)
        table = dr12_giant_labels(shared / "apogee" / "labels" / "apogee_dr12_labels.csv",
                                  label_names)
        table = table.sample(min(n_simulated, len(table)), random_state=seed)
        table = table.reset_index(drop=True)
        rng = np.random.default_rng(seed)
        table["SNR"] = rng.uniform(50, 250, len(table))
        templates = noise_templates(data.spectra)   # already read: no second read
        X = simulate_spectra(reference, table, table.SNR.to_numpy(), rng, templates)
        training = SpectralDataset.from_spectra(
            reference.wavelength_, X, table,
            provenance={"simulated_from": "reference model cannon_apokasc_dr12"})
        source = (f"simulated: {int(np.sum(labelled))} labelled real stars selected (fewer than "
                  f"{MIN_REAL_TRAINING_STARS}), so {len(table)} spectra were simulated from the "
                  "published 4-label reference model at real DR12 giant labels (SNR 50-250, "
                  "noise shapes and masks of the downloaded spectra)")
    print(f"training set: {source}", file=log)

    print(f"split + train + cross-validate: train_test_split halves, random_state={seed}",
          file=log)
    result = split_validate(training.X, training.labels, label_names, random_state=seed,
                            wavelength=training.wavelength)
    model = result.model
    model.save(output / "model.h5", overwrite=True, provenance={"training": source})
    result.accuracy.to_csv(output / "accuracy.csv", index=False)
    print(result.accuracy.to_string(index=False, float_format=lambda v: f"{v:.4g}"), file=log)
    snr = training.labels["SNR"].to_numpy()[result.test_index] \
        if "SNR" in training.labels else None
    o2o = save_figure(one_to_one_figure(result.reference, result.fit.labels, label_names,
                                        color=snr), figures_dir / "one_to_one.png")
    pull_path = save_figure(pull_figure(result.pulls, label_names), figures_dir / "pulls.png")
    outliers = find_outliers(result.reference, result.fit, label_names,
                             info=training.labels.iloc[result.test_index])

    print(f"fit: labels of the {len(real)} real spectra", file=log)
    fit = model.infer_labels(real.X)
    star_labels = fit.to_frame(ids=real.ids)
    star_labels.to_csv(output / "labels.csv", index=False)
    posterior_section = _posterior_section(model, real, fit, result.accuracy, figures_dir, seed,
                                           log)
    summary = pd.DataFrame([
        {"stage": "select", "result": f"{len(data.selection)} stars "
                                      f"({data.cut_table[-1]['remaining']} after cuts)"},
        {"stage": "download", "result": data.download.summary()},
        {"stage": "normalize", "result": f"{len(real)} spectra, {len(problems)} skipped"},
        {"stage": "training set", "result": source},
        {"stage": "split", "result": f"{len(result.train_index)} train / "
                                     f"{len(result.test_index)} test (random_state={seed})"},
        {"stage": "train", "result": f"{int(model.pixel_mask_.sum())} pixels, median s "
                                     f"{np.median(np.sqrt(model.s2_[model.pixel_mask_])):.4f}"},
        {"stage": "cross-validate", "result": "; ".join(
            f"{r.label} scatter {r.scatter:.3g}" for r in result.accuracy.itertuples())},
        {"stage": "fit", "result": f"{len(real)} real spectra fitted"},
    ])
    science, numbers = science_sections(ScienceInputs(
        model=model, training=training, validation=result, real=real, real_fit=fit,
        raw_spectra=data.spectra, selection=data.selection, cuts=cuts or QualityCuts(),
        continuum=continuum,
        windows=shared / "apogee" / "aspcap_windows" / "aspcap_l31c_masks.npy",
        isochrones=shared / "isochrones" / "mist_v1.2", training_note=f"Training data: {source}.",
        normalization_star="2M21235315+1244123", model_star="2M03533659+2512012"), figures_dir)
    sections = [
        Section("Selection", "How many stars each cut removed.",
                tables=[(pd.DataFrame(data.cut_table), "")], note="; ".join(data.notes)),
        *science[:3],
        Section("Cross-validation", "Train on one half, fit the other; bias and scatter per "
                "label (fitted - reference).", note=f"Training data: {source}.",
                tables=[(result.accuracy, "Test half"), (result.by_snr, "By SNR")],
                figures=[(str(o2o), "Fitted vs reference labels with the 1:1 line; residuals "
                                    "below; colour: SNR."),
                         (str(pull_path), "Pulls (fit - reference) / sigma: a unit Gaussian "
                                          "means honest uncertainties.")]),
        Section("Outliers", f"Test-half stars off by more than 3 robust scatters: "
                f"{len(outliers)}.", tables=[(outliers.head(30), "")] if len(outliers) else []),
        Section("Labels of the real spectra", tables=[(star_labels, "")]),
        *([posterior_section] if posterior_section is not None else []),
        *science[3:],
    ]
    report = write_report(figures_dir, "skcannon main job", sections, summary)
    write_pdf(figures_dir / "report.pdf", sections, summary)
    return JobResult(data, source, result.accuracy, star_labels, summary, report)


def _posterior_section(model, real, fit, accuracy, directory: Path, seed: int, log: TextIO):
    """PyMC posterior of the first real spectrum, compared with the other uncertainties
    (skipped, with a note, when PyMC is not installed)."""
    from skcannon.report.html import Section

    try:
        from skcannon.inference.mcmc import (
            CannonPosterior,
            posterior_comparison,
            posterior_corner_figure,
        )
    except ImportError:  # pragma: no cover - the mcmc extra is optional
        return Section("Posterior", note="PyMC is not installed (pip install skcannon[mcmc]).")
    import warnings

    from skcannon.plotting import save_figure

    names = list(model.label_names)
    star = real.ids[0]
    print(f"posterior: NUTS, 4 chains x 1000 draws for {star}", file=log)
    sampler = CannonPosterior(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        posterior = sampler.sample(real.flux[0], real.ivar[0], chains=4, seed=seed,
                                   initial=fit.labels[0])
    comparison = posterior_comparison(names, posterior, fit.uncertainties[0],
                                      accuracy.set_index("label").reindex(names)["scatter"])
    corner_path = save_figure(posterior_corner_figure(posterior, names, fit.labels[0]),
                              directory / f"posterior_{star}.png")
    summary = posterior.summary.reset_index(names="label")
    return Section(
        f"Posterior of {star}", f"Priors: {posterior.priors}. NUTS, 4 chains x 1000 draws, "
        f"{posterior.divergences} divergences. The posterior sd equals the optimizer's formal "
        "uncertainty (the likelihood is nearly Gaussian); both are several times smaller than "
        "the cross-validation scatter, which also holds the model's own error (trained on a "
        "finite, noisy set), label noise in the training set and correlated pixel errors that "
        "the per-pixel likelihood ignores.",
        note="; ".join(posterior.warnings),
        tables=[(summary, "Posterior summary"), (comparison, "Uncertainties compared")],
        figures=[(str(corner_path), "Posterior draws; red: the optimizer's best fit.")])
