"""The survey command: a trained model applied to many files on Dask."""

from __future__ import annotations

import argparse
import contextlib

from skcannon.apogee.constants import ARCHIVE_URL_ENV, DATA_DIR_ENV
from skcannon.cli.common import (
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    add_product_options,
    load_model,
    pipeline_for,
    products_text,
)


def _archive(args: argparse.Namespace):
    """The archive base URL: a local mirror served for the run (``--mirror``), or the option."""
    if args.mirror:
        from skcannon.apogee.mirror import serve_mirror

        return serve_mirror(args.mirror)
    return contextlib.nullcontext(args.archive_url)


def _with_nuisance(model, args: argparse.Namespace):
    """The model with ``--fit-rv``/``--rv-max``/``--continuum-order`` set on its regressor
    (given options only; the model's own otherwise). They enter the model's digest, so parts
    fitted without them are not reused."""
    options = {}
    if args.fit_rv:
        options.update(fit_rv=True, rv_max=args.rv_max)
    if args.continuum_order is not None:
        options["continuum_order"] = args.continuum_order
    if options:
        model[-1].set_params(**options)
    return model


def cmd_survey(args: argparse.Namespace) -> int:
    from skcannon.survey import label_survey, survey_inputs

    model = _with_nuisance(pipeline_for(load_model(args.model), args.continuum), args)
    cuts = None
    if args.cuts:
        from skcannon.apogee.catalog import QualityCuts

        cuts = QualityCuts()
    with _archive(args) as archive:
        inputs = survey_inputs(args.inputs, directory=args.data_dir, archive=archive,
                               cuts=cuts)
        result = label_survey(model, inputs, args.output, product=args.product,
                              chunk_size=args.chunk_size,
                              scheduler=args.scheduler, scheduler_file=args.scheduler_file,
                              n_workers=args.workers, n_starts=args.starts, seed=args.seed,
                              progress=not args.no_progress,
                              save_model_spectra=args.save_model_spectra,
                              visits=args.visits)
    summary = result.summary
    print(f"{summary['files']} spectra: {summary['fitted']} fitted, {summary['bad_files']} bad "
          f"files, {summary['missing']} missing, {summary['unfitted']} unfitted "
          f"({result.computed} chunks computed, {result.skipped} already done"
          + (f", {len(result.recomputed)} damaged or stale parts recomputed)"
             if result.recomputed else ")"))
    for flag, count in summary["flags"].items():
        print(f"  {flag:<17} {count}")
    if summary["spectra_per_s"]:
        print(f"throughput: {summary['spectra_per_s']} spectra/s")
    print(f"catalog: {result.catalog}")
    if "model_spectra" in summary:
        print(f"model spectra: {len(summary['model_spectra'])} files in "
              f"{result.catalog.parent / 'parts'} (skcannon.survey.read_model_spectra)")
    if summary["files"] > summary["fitted"]:
        print(f"rows without a fit: {result.catalog.parent / 'survey_failures.json'}")
    return 0


def register(sub) -> None:
    """Add the survey command to the ``skcannon`` subparsers."""
    survey = sub.add_parser(
        "survey", help="label many files with a model on Dask (resumable)",
        description="Apply a trained model to spectrum files on Dask (an embedded "
                    "LocalCluster, or --scheduler / --scheduler-file of a running cluster): "
                    "chunks of files, one Parquet part per chunk (a re-run skips finished "
                    "chunks), one FITS catalog and a summary. Files named by a catalog and not "
                    "yet on disk are fetched by the workers. A file that cannot be used is a "
                    "flagged row, never a failed run.")
    survey.add_argument("model", help="model file")
    survey.add_argument("inputs", nargs="+",
                        help=f"spectrum files ({products_text()}), "
                             "directories, globs, or tables (FITS/CSV/Parquet) with a PATH "
                             "column or APOGEE_ID, TELESCOPE, FIELD (an allStar catalog)")
    survey.add_argument("--output", "-o", default="survey", help="output directory")
    add_product_options(survey, "require every file to be this product (default: each "
                                "file's own, identified from its HDUs)")
    survey.add_argument("--cuts", action="store_true",
                        help="apply the default quality cuts to catalog tables (every field)")
    survey.add_argument("--data-dir", default=None,
                        help=f"where catalog rows' apStar files are, and are fetched to "
                             f"(default: ${DATA_DIR_ENV} or ~/.cache/skcannon)")
    archive = survey.add_mutually_exclusive_group()
    archive.add_argument("--archive-url", default=None,
                         help=f"archive base URL (default: ${ARCHIVE_URL_ENV} or the SDSS SAS)")
    archive.add_argument("--mirror", default=None, metavar="DIR",
                         help="serve DIR on 127.0.0.1 as the archive for this run")
    survey.add_argument("--chunk-size", type=POSITIVE_INT, default=256,
                        help="files per task (default 256)")
    survey.add_argument("--starts", type=NON_NEGATIVE_INT, default=4,
                        help="optimizer starts per star besides the linearized guess")
    survey.add_argument("--seed", type=NON_NEGATIVE_INT, default=0,
                        help="seed of the spread starts")
    cluster = survey.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=POSITIVE_INT, default=None,
                         help="workers of the embedded cluster (default: one per core)")
    cluster.add_argument("--scheduler", default=None, metavar="ADDRESS",
                         help="a running Dask scheduler, e.g. tcp://host:8786")
    cluster.add_argument("--scheduler-file", default=None, metavar="PATH",
                         help="scheduler file of a running cluster (dask scheduler "
                              "--scheduler-file, dask-jobqueue, dask-mpi)")
    survey.add_argument("--save-model-spectra", action="store_true",
                        help="also store each fitted star's best-fit model spectrum and "
                             "continuum beside its part (parts/*.model.h5; read them with "
                             "skcannon.survey.read_model_spectra); done parts without them "
                             "are recomputed")
    survey.add_argument("--visits", action="store_true",
                        help="fit each apStar file's individual visits jointly (one label "
                             "vector, an RV per visit, RV_VARIABLE): one row per file")
    from skcannon.cli.modelling import add_nuisance_options

    add_nuisance_options(survey, fix=False)
    survey.add_argument("--no-progress", action="store_true", help="no progress bar")
    survey.set_defaults(func=cmd_survey, owns_output=True)
