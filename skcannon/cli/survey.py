"""The survey command: a trained model applied to many files on Dask."""

from __future__ import annotations

import argparse
import glob
from pathlib import Path

from skcannon.cli.common import DEFAULT_CONTINUUM, POSITIVE_INT
from skcannon.errors import SkcannonError


def survey_paths(inputs: list[str]) -> list[str]:
    """Files from INPUTs: apStar files, directories (searched recursively for apStar*.fits),
    globs, or a CSV table with a PATH column; in a stable order, each once."""
    import pandas as pd

    paths: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(map(str, path.rglob("apStar*.fits")))
            if not found:
                raise SkcannonError(f"{item}: no apStar*.fits files in this directory")
            paths += found
        elif path.suffix.lower() == ".csv" and path.is_file():
            table = pd.read_csv(path)
            if "PATH" not in table:
                raise SkcannonError(f"{path}: a table of inputs needs a PATH column")
            paths += [str(p) for p in table.PATH]
        elif path.exists():
            paths.append(str(path))
        else:
            matches = sorted(glob.glob(item))
            if not matches:
                raise SkcannonError(f"{item}: no such file, directory or matching files")
            paths += matches
    return list(dict.fromkeys(paths))


def cmd_survey(args: argparse.Namespace) -> int:
    from skcannon.survey import label_survey

    paths = survey_paths(args.inputs)
    result = label_survey(args.model, paths, args.output, continuum=args.continuum,
                          chunk_size=args.chunk_size, scheduler=args.scheduler,
                          n_workers=args.workers, progress=not args.no_progress)
    summary = result.summary
    print(f"{summary['files']} files: {summary['fitted']} fitted, {summary['bad_files']} bad "
          f"({result.computed} chunks computed, {result.skipped} already done)")
    for flag, count in summary["flags"].items():
        print(f"  {flag:<17} {count}")
    if summary["spectra_per_s"]:
        print(f"throughput: {summary['spectra_per_s']} spectra/s")
    print(f"catalog: {result.catalog}")
    return 0


def register(sub) -> None:
    """Add the survey command to the ``skcannon`` subparsers."""
    survey = sub.add_parser(
        "survey", help="label many files with a model on Dask (resumable)",
        description="Apply a trained model to apStar files on Dask (an embedded LocalCluster, "
                    "or --scheduler ADDRESS): chunks of files, one Parquet part per chunk "
                    "(a re-run skips finished chunks), one FITS catalog and a summary. A file "
                    "that cannot be read is a flagged row, never a failed run.")
    survey.add_argument("model", help="model file")
    survey.add_argument("inputs", nargs="+",
                        help="apStar files, directories, globs, or a CSV with a PATH column")
    survey.add_argument("--output", "-o", default="survey", help="output directory")
    survey.add_argument("--continuum", default=DEFAULT_CONTINUUM,
                        help="continuum pixels of the model's preprocessing "
                             "(default: %(default)s)")
    survey.add_argument("--chunk-size", type=POSITIVE_INT, default=256,
                        help="files per task (default 256)")
    survey.add_argument("--workers", type=POSITIVE_INT, default=None,
                        help="workers of the embedded cluster (default: one per core)")
    survey.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="a running Dask scheduler, e.g. tcp://host:8786 (dask-jobqueue)")
    survey.add_argument("--no-progress", action="store_true", help="no progress bar")
    survey.set_defaults(func=cmd_survey, owns_output=True)
