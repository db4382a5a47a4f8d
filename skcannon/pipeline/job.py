"""The main job: select -> download -> normalize -> split -> train -> cross-validate -> fit ->
posterior -> report, composed of the stages in :mod:`skcannon.pipeline.stages`.

The CLI's ``run`` command only parses options into a :class:`JobConfig` and calls
:func:`run_main_job`; ``validate``, ``report`` and ``posterior`` call the same stages.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from skcannon.apogee.constants import MODEL_STAR, NORMALIZATION_STAR
from skcannon.integrity import output_lock
from skcannon.model import Cannon, CannonRegressor
from skcannon.persistence import save
from skcannon.pipeline.config import JobConfig
from skcannon.pipeline.stages import (
    MIN_REAL_TRAINING_STARS,
    OUTLIER_K,
    DataStageResult,
    PosteriorOutputs,
    RealValidation,
    TrainingSet,
    ValidationOutputs,
    fit_flags,
    fit_stage,
    mystery_spectrum,
    normalize_stage,
    posterior_stage,
    real_validation_stage,
    report_stage,
    run_data_stage,
    training_set_stage,
    validate_stage,
)
from skcannon.report import ScienceInputs, Section, science_sections
from skcannon.report.checkpoints import CheckpointInputs, write_checkpoints
from skcannon.report.sections import (
    cross_validation_section,
    labels_section,
    outliers_section,
    posterior_section,
    real_validation_section,
    selection_section,
)

__all__ = ["MIN_REAL_TRAINING_STARS", "JobConfig", "JobResult", "run_main_job"]

#: Science sections shown before the job's own validation sections (the mission's order).
_SECTIONS_BEFORE_VALIDATION = ("Label distribution", "Normalization", "Model vs data")


@dataclass
class JobResult:
    """What the main job produced.

    Attributes
    ----------
    data : DataStageResult
        The selection, its download report and the apStar spectra read.
    training_source : str
        Where the training set came from, in words (real labelled stars, or simulated).
    accuracy : DataFrame
        Bias, scatter and robust scatter per label of the split validation's test half.
    star_labels : DataFrame
        The labels of the real spectra, one row per spectrum (as written to ``labels.csv``).
    summary : DataFrame
        One row per stage (columns ``stage`` and ``result``): what it did.
    report : Path
        The HTML report page (``index.html``; ``report.pdf`` beside it).
    """

    data: DataStageResult
    training_source: str
    accuracy: pd.DataFrame
    star_labels: pd.DataFrame
    summary: pd.DataFrame
    report: Path


def run_main_job(config: JobConfig, *, log: TextIO | None = None) -> JobResult:
    """select -> download -> normalize -> split -> train -> cross-validate -> fit -> report.

    Training set: the selected stars with ASPCAP labels when there are at least
    ``MIN_REAL_TRAINING_STARS`` of them; otherwise (as offline against ../shared, which holds
    no labelled apStar spectra) spectra simulated from the published reference model at real
    DR12 giant labels, said so in the summary and the report. Every apStar file is read once.
    The output directory is owned by this run (:func:`skcannon.integrity.output_lock`): a
    second run into it is refused. The job runs under the package's thread policy
    (:func:`skcannon.inference.threads.command_threads`).

    Parameters
    ----------
    config : JobConfig
        The job's options: selection, data and output directories, seed, shared resources.
    log : text stream or None, default=None
        Where each stage reports what it does; None: ``sys.stdout`` as it is at the call.

    Returns
    -------
    JobResult
        What the job produced; ``model.h5`` (the fitted Pipeline), ``labels.csv`` and the
        report are written to ``config.output`` and its figures directory.

    Raises
    ------
    OutputInUseError
        Another run holds ``config.output``.
    """
    from skcannon.inference.threads import command_threads

    with output_lock(config.output), command_threads():     # the package's thread policy
        return _run_main_job(config, sys.stdout if log is None else log)


def _run_main_job(config: JobConfig, log: TextIO) -> JobResult:
    data = run_data_stage(config, log)
    real, view = normalize_stage(config, data, log)
    training = training_set_stage(config, real, view, log)
    print(f"split + train + cross-validate: train_test_split halves, "
          f"random_state={config.seed}", file=log)
    validation = validate_stage(training.dataset, training.label_names, seed=config.seed,
                                output_dir=config.output, figures_dir=config.figures_dir)
    real_cv = real_validation_stage(config.resources.real_labelled, config.output,
                                    config.figures_dir, log, seed=config.seed)
    model = validation.result.model
    save(fitted_pipeline(view.preprocessor, model), config.output / "model.h5",
         overwrite=True, provenance={"training": training.source})
    print(f"split validation, test half of the training set ({training.source}):",
          file=log)
    print(validation.result.accuracy.to_string(index=False, float_format=lambda v: f"{v:.4g}"),
          file=log)
    fit, star_labels = fit_stage(model, real, config.output, log)
    posterior = _job_posterior(config, model, real, fit, validation, log)
    inputs = ScienceInputs(
        model=model, training=training.dataset, validation=validation.result, real=real,
        real_fit=fit, raw_spectra=data.spectra, normalized=view, selection=data.selection,
        cuts=data.cuts, windows=config.resources.windows,
        isochrones=config.resources.isochrones,
        training_note=f"Training data: {training.source}.",
        normalization_star=NORMALIZATION_STAR, model_star=MODEL_STAR)
    science, _ = science_sections(inputs, config.figures_dir)
    checkpoints = write_checkpoints(_checkpoint_inputs(inputs, training, validation, real_cv,
                                                       posterior), config.output / "checkpoints")
    print("checkpoints: " + ", ".join(str(p) for p in checkpoints), file=log)
    summary = job_summary(data, len(real), training, validation, real_cv, seed=config.seed)
    sections = job_sections(data, training, validation, real_cv, star_labels, posterior,
                            science)
    report = report_stage(config.figures_dir, "skcannon main job", sections, summary)
    return JobResult(data, training.source, validation.result.accuracy, star_labels, summary,
                     report)


def _checkpoint_inputs(inputs: ScienceInputs, training: TrainingSet,
                       validation: ValidationOutputs, real_cv: RealValidation | None,
                       posterior: PosteriorOutputs | None) -> CheckpointInputs:
    """What the checkpoint PDFs are drawn from: the cross-validation plot is the real-data
    one when it ran, else the split validation's."""
    if real_cv is not None:
        cv = (real_cv.figure, f"Cross-validation plot: held-out fitted vs ASPCAP labels "
                              f"(first repeat of {real_cv.n_stars} real giants, 1:1 line; "
                              f"residuals below). Data source: {real_cv.source} (real spectra).")
    else:
        cv = (validation.figures["one_to_one"], "Cross-validation plot: fitted vs reference "
              f"labels of the test half. Data source: {training.source}.")
    return CheckpointInputs(inputs, training.source, cv, posterior,
                            posterior.source if posterior is not None else "")


def fitted_pipeline(preprocessor: Pipeline, model: Cannon) -> Pipeline:
    """The model as it is saved and applied: the fitted ``preprocessor`` steps, then
    ``CannonRegressor.from_fitted(model)``."""
    return Pipeline([*preprocessor.steps, ("cannonregressor", CannonRegressor.from_fitted(model))])


def _job_posterior(config: JobConfig, model, real, fit, validation: ValidationOutputs,
                   log: TextIO) -> PosteriorOutputs | None:
    """PyMC posterior of the mystery spectrum (the lab's step), else of the first real star
    whose fit is confident (neither on a bound nor outside the training range), else of real
    star 0 flagged as such. None (with a note) without PyMC."""
    try:
        import pymc  # noqa: F401
    except ImportError:  # pragma: no cover - the mcmc extra is optional
        print("posterior: skipped (PyMC is not installed: pip install skcannon[mcmc])", file=log)
        return None
    shared = config.resources
    if shared.mystery.is_file() and shared.continuum.is_file():
        X, star = mystery_spectrum(shared.mystery, shared.continuum)
        fit, n = model.infer_labels(X), 0
        source = (f"the mystery apStar spectrum {shared.mystery.name} (the lab's blind fit), "
                  "preprocessed like the training spectra")
    else:
        X, n = real.X, int(np.argmax(fit.confident)) if fit.confident.any() else 0
        star = str(real.ids[n])
        source = (f"real spectrum {star} (the mystery spectrum {shared.mystery} is absent; "
                  "the first real star with a confident fit)")
    print(f"posterior: NUTS, 4 chains x 1000 draws for {star} ({source})", file=log)
    names = list(model.label_names)
    accuracy = validation.result.accuracy.set_index("label").reindex(names)
    return posterior_stage(model, X[n, 0], X[n, 1], best_labels=fit.labels[n],
                           formal_sigma=fit.formal_uncertainties[n], star=star,
                           directory=config.figures_dir, seed=config.seed,
                           cv_scatter=accuracy["scatter"].to_numpy(), quiet=True,
                           flags=fit_flags(fit, n), source=source)


def job_summary(data: DataStageResult, n_normalized: int, training: TrainingSet,
                validation: ValidationOutputs, real_cv: RealValidation | None, *,
                seed: int) -> pd.DataFrame:
    """One line per stage: what it did."""
    result, model = validation.result, validation.result.model
    skipped = len(data.download.records) - n_normalized
    real_line = ("not run (the real labelled set is absent)" if real_cv is None else
                 f"{real_cv.n_stars} real giants: " + "; ".join(
                     f"{r.label} robust scatter {r.robust_scatter:.3g}"
                     for r in real_cv.summary.itertuples()))
    return pd.DataFrame([
        {"stage": "select", "result": f"{len(data.selection)} stars "
                                      f"({data.cut_table[-1]['remaining']} after cuts)"},
        {"stage": "download", "result": data.download.summary()},
        {"stage": "normalize", "result": f"{n_normalized} spectra, {skipped} skipped"},
        {"stage": "training set", "result": training.source},
        {"stage": "split", "result": f"{len(result.train_index)} train / "
                                     f"{len(result.test_index)} test (random_state={seed})"},
        {"stage": "train", "result": f"{int(model.pixel_mask_.sum())} pixels, median s "
                                     f"{np.median(np.sqrt(model.s2_[model.pixel_mask_])):.4f}"},
        {"stage": "cross-validate (real spectra)", "result": real_line},
        {"stage": "cross-validate", "result": "; ".join(
            f"{r.label} scatter {r.scatter:.3g}" for r in result.accuracy.itertuples())},
        {"stage": "fit", "result": f"{n_normalized} real spectra fitted"},
    ])


def job_sections(data: DataStageResult, training: TrainingSet, validation: ValidationOutputs,
                 real_cv: RealValidation | None, star_labels: pd.DataFrame,
                 posterior: PosteriorOutputs | None, science: list[Section]) -> list[Section]:
    """The report's sections in the mission's order."""
    before = [s for s in science if s.title in _SECTIONS_BEFORE_VALIDATION]
    after = [s for s in science if s.title not in _SECTIONS_BEFORE_VALIDATION]
    posterior_part = ([posterior_section(posterior)] if posterior is not None else
                      [Section("Posterior", note="PyMC is not installed "
                                                 "(pip install skcannon[mcmc]).")])
    real_part = ([real_validation_section(real_cv)] if real_cv is not None else
                 [Section("Cross-validation on real spectra",
                          note="Not shown: the real labelled set (../shared/apogee/"
                               "real_labelled) is absent.")])
    return [
        selection_section(data.cut_table, data.notes), *before, *real_part,
        cross_validation_section(
            validation.result, validation.figures, "Train on one half, fit the other; bias "
            "and scatter per label (fitted - reference).",
            note=f"Training data: {training.source}."),
        outliers_section(validation.outliers, OUTLIER_K), labels_section(star_labels),
        *posterior_part, *after,
    ]
