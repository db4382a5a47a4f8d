"""Report and posterior commands."""

from __future__ import annotations

import argparse

import numpy as np

from skcannon.cli.common import DEFAULT_CONTINUUM, NON_NEGATIVE_INT, POSITIVE_INT, add_shared_option
from skcannon.integrity import write_csv_atomic


def cmd_report(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from skcannon.apogee.catalog import QualityCuts
    from skcannon.cli.common import load_cannon
    from skcannon.data.build import default_preprocessor, normalize_apstar_files
    from skcannon.data.dataset import SpectralDataset
    from skcannon.errors import SkcannonError
    from skcannon.pipeline.resources import SharedData
    from skcannon.pipeline.stages import report_stage, validate_stage
    from skcannon.report import ScienceInputs, science_sections
    from skcannon.report.sections import cross_validation_section

    out = Path(args.output)
    shared = SharedData(Path(args.shared))
    for name in shared.missing():                 # said on the command line and in the report
        print(f"note: --shared {args.shared}: {name} not found ({getattr(shared, name)}); "
              "the report says what it cannot show", file=sys.stderr)
    if not Path(shared.continuum).is_file() and args.apstar:
        raise SkcannonError(f"--shared {args.shared}: no continuum pixel file "
                            f"({shared.continuum}): cannot normalize the --apstar spectra")
    model = load_cannon(args.model)
    training = SpectralDataset.load(args.dataset)
    validation = validate_stage(training, list(model.label_names), seed=args.seed,
                                output_dir=out)
    real = SpectralDataset.load(args.real) if args.real else None
    raw, normalized = normalize_apstar_files(args.apstar or [],
                                             default_preprocessor(shared.continuum))
    sections, _ = science_sections(ScienceInputs(
        model=model, training=training, validation=validation.result, real=real,
        real_fit=model.infer_labels(real.X) if real is not None else None,
        raw_spectra=raw, normalized=normalized, cuts=QualityCuts(), windows=shared.windows,
        isochrones=Path(args.isochrones) if args.isochrones else shared.isochrones,
        normalization_star=args.normalization_star, model_star=args.model_star,
        training_note=f"Model {args.model} (training: "
                      f"{model.provenance_.get('training', 'see the model file')})."), out)
    accuracy = cross_validation_section(
        validation.result, validation.figures, f"Split of {args.dataset} into halves "
        f"(random_state={args.seed}); a model trained on one half, the other fitted.")
    path = report_stage(out, "skcannon report", [accuracy, *sections],
                        pd_summary(model, training, validation.result))
    print(f"report: {path} (and {out / 'report.pdf'})")
    return 0


def pd_summary(model, training, validation):
    """A small summary table for the report command."""
    import pandas as pd

    return pd.DataFrame([
        {"stage": "model", "result": f"{', '.join(model.label_names)}; "
                                     f"{int(model.pixel_mask_.sum())} pixels; median s "
                                     f"{np.median(np.sqrt(model.s2_[model.pixel_mask_])):.4f}"},
        {"stage": "dataset", "result": f"{len(training)} spectra"},
        {"stage": "cross-validation", "result": "; ".join(
            f"{r.label} scatter {r.scatter:.3g}" for r in validation.accuracy.itertuples())},
    ])


def _checked_dataset(path, model):
    """A dataset or array file for ``model``: opened, and refused on another wavelength grid."""
    from skcannon.data import open_dataset

    dataset = open_dataset(path)
    model.check_wavelength(dataset.wavelength if dataset.has_wavelength else None, path,
                           n_pixels=dataset.flux.shape[1])
    return dataset


def _require_usable(ivar, rows: list[int], ids, path) -> None:
    """Refuse rows (of ``ivar``, (n_stars, n_pixels)) without a single usable pixel."""
    import numpy as np

    from skcannon.errors import SkcannonError

    empty = [r for r in rows if not np.any(ivar[r] > 0)]
    if empty:
        more = f" (and {len(empty) - 1} more rows)" if len(empty) > 1 else ""
        raise SkcannonError(f"{path}: row {empty[0]} ({ids[empty[0]]}) has no usable pixel "
                            f"(inverse variance 0 everywhere){more}")


def _posterior_input(args: argparse.Namespace, loaded):
    """The spectrum to sample (X, shape (1, 3, n_pixels)), its name and the reference
    uncertainties when a dataset holds them; an apStar file goes through the model's own
    preprocessing (or, for a model without, the standard steps with ``--continuum``)."""
    from pathlib import Path

    import numpy as np
    from sklearn.base import clone

    from skcannon.cli.common import pipeline_for
    from skcannon.data.build import normalize_apstar_files
    from skcannon.errors import SkcannonError
    from skcannon.labels import error_column
    from skcannon.pipeline.model import cannon_of

    model = cannon_of(loaded)

    path = Path(args.spectrum)
    if path.suffix.lower() in (".h5", ".hdf5", ".npz"):
        dataset = _checked_dataset(path, model)
        if args.row >= len(dataset):
            raise SkcannonError(f"--row: {args.row} is beyond the last row of {path} "
                                f"({len(dataset)} stars: rows 0-{len(dataset) - 1})")
        _require_usable(dataset.ivar, [args.row], dataset.ids, path)
        errors = [error_column(n) for n in model.label_names]
        sigma = (dataset.labels.iloc[args.row][errors].to_numpy(float)
                 if all(e in dataset.labels for e in errors) else None)
        return dataset.X[args.row : args.row + 1], dataset.ids[args.row], sigma
    # an apStar file, preprocessed exactly like the training data
    preprocessor = clone(pipeline_for(loaded, args.continuum)[:-1])
    spectra, normalized = normalize_apstar_files([path], preprocessor)
    if not np.any(normalized.normalized[0, 1] > 0):
        raise SkcannonError(f"{path}: no usable pixel after masking (every pixel is flagged "
                            "bad or has no valid error)")
    return normalized.normalized, spectra[0].apogee_id, None


def cmd_posterior(args: argparse.Namespace) -> int:
    from pathlib import Path

    from skcannon.cli.common import load_model
    from skcannon.pipeline.model import cannon_of
    from skcannon.pipeline.stages import posterior_stage

    loaded = load_model(args.model)
    model = cannon_of(loaded)
    if args.rows is not None:
        return _posterior_many(args, model)
    names = list(model.label_names)
    X, star, reference_sigma = _posterior_input(args, loaded)
    fit = model.infer_labels(X)
    cv = None
    if args.cv_accuracy:
        import pandas as pd

        cv = pd.read_csv(args.cv_accuracy).set_index("label").reindex(names)["scatter"]
        cv = cv.to_numpy()
    out = Path(args.output)
    outputs = posterior_stage(
        model, X[0, 0], X[0, 1], best_labels=fit.labels[0],
        formal_sigma=fit.formal_uncertainties[0], star=star, directory=out, seed=args.seed,
        cv_scatter=cv,
        reference_sigma=reference_sigma, prior=args.prior, likelihood=args.likelihood,
        sampler=args.sampler,
        chains=args.chains, draws=args.draws, tune=args.tune,
        corner_name="posterior_corner.png")
    posterior = outputs.posterior
    print(f"priors: {posterior.priors}")
    write_csv_atomic(posterior.summary, out / "posterior_summary.csv")
    posterior.idata.to_netcdf(str(out / "chains.nc"))
    write_csv_atomic(outputs.comparison, out / "uncertainty_comparison.csv", index=False)
    print(f"\n{star}: posterior summary ({args.chains} chains x {args.draws} draws, "
          f"{posterior.divergences} divergences)")
    print(posterior.summary.to_string(float_format=lambda v: f"{v:.4g}"))
    for warning in posterior.warnings:
        print(f"WARNING: {warning}")
    print("\nuncertainties compared")
    print(outputs.comparison.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"\nchains, summary, corner plot and comparison in {out}/")
    return 0


def _selected_rows(text: str, n_stars: int, source) -> list[int]:
    """Rows named by ``--rows`` ("all" or "N,M,..."), checked against the dataset."""
    from skcannon.errors import SkcannonError

    if text.strip().lower() == "all":
        return list(range(n_stars))
    try:
        rows = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SkcannonError(f"--rows: {text!r} is not 'all' or a list like 0,5,7") from None
    bad = [r for r in rows if not 0 <= r < n_stars]
    if bad or not rows:
        raise SkcannonError(f"--rows: {bad or text!r} not rows of {source} (0-{n_stars - 1})")
    return rows


def _posterior_many(args: argparse.Namespace, model) -> int:
    """``posterior --rows``: one compiled model for many stars, one summary table."""
    import time
    from pathlib import Path

    from skcannon.inference.mcmc import CannonPosterior, sample_many

    dataset = _checked_dataset(args.spectrum, model)
    rows = _selected_rows(args.rows, len(dataset), args.spectrum)
    _require_usable(dataset.ivar, rows, dataset.ids, args.spectrum)
    fit = model.infer_labels(dataset.X[rows])
    sampler = CannonPosterior(model, prior=args.prior, likelihood=args.likelihood,
                              sampler=args.sampler)
    print(f"priors: {sampler.priors}\nsampler: {sampler.sampler}, {args.chains} chains x "
          f"{args.draws} draws (+{args.tune} tuning) per star, {len(rows)} stars", flush=True)
    start = time.perf_counter()
    table = sample_many(sampler, dataset.flux[rows], dataset.ivar[rows],
                        ids=dataset.ids[rows], initial=fit.labels, draws=args.draws,
                        tune=args.tune, chains=args.chains, seed=args.seed, progress=True)
    seconds = time.perf_counter() - start
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    table.insert(1, "ROW", rows)
    write_csv_atomic(table, out / "posterior_summaries.csv", index=False)
    unconverged = table[~table.CONVERGED]
    print(f"{len(table)} posteriors in {seconds:.1f} s ({60 * len(table) / seconds:.0f} "
          f"stars/minute); {len(unconverged)} not converged")
    for row in unconverged.itertuples():
        print(f"  not converged: row {row.ROW} {row.ID}: {row.WARNINGS}")
    print(f"summaries in {out / 'posterior_summaries.csv'}")
    return 0


def register(sub) -> None:
    """Add this module's commands to the ``skcannon`` subparsers."""
    from skcannon.inference.posterior import LIKELIHOODS, PRIORS
    from skcannon.inference.samplers import SAMPLERS

    report = sub.add_parser("report", help="all figures and tables in one HTML page and a PDF",
                            description="Corner plot, normalization, model vs data, gradient "
                                        "spectra with Mg/Si windows, s^2, Kiel diagram with "
                                        "MIST isochrones, spectra sequences and the "
                                        "cross-validation tables, as index.html and "
                                        "report.pdf.")
    report.add_argument("dataset", help="labelled dataset (HDF5) for the corner plot and CV")
    report.add_argument("--model", required=True, help="model file")
    report.add_argument("--real", default=None, help="dataset of real spectra to fit and show")
    report.add_argument("--apstar", nargs="*", default=None,
                        help="apStar files for the normalization diagnostic")
    report.add_argument("--normalization-star", default=None, help="APOGEE_ID to show")
    report.add_argument("--model-star", default=None, help="APOGEE_ID for model vs data")
    report.add_argument("--isochrones", default=None, help="directory of MIST CSV/.iso files")
    add_shared_option(report, "the continuum pixels, element windows and isochrones")
    report.add_argument("--seed", type=NON_NEGATIVE_INT, default=42,
                        help="random_state of the CV split")
    report.add_argument("--output", "-o", default="report", help="output directory")
    report.set_defaults(func=cmd_report, owns_output=True)

    posterior = sub.add_parser("posterior", help="full posteriors of spectra (PyMC model, nutpie)",
                               description="NUTS sampling of a spectrum's labels under the "
                                           "Cannon model (PyMC); prints the priors, a summary "
                                           "with R-hat/ESS/divergences and the comparison of "
                                           "uncertainties; saves the chains (netCDF) and a "
                                           "corner plot.")
    posterior.add_argument("spectrum", help="an apStar file, or a dataset file with --row")
    posterior.add_argument("--model", required=True, help="model file")
    posterior.add_argument("--row", type=NON_NEGATIVE_INT, default=0, help="row of a dataset file")
    posterior.add_argument("--rows", default=None, metavar="all|N,M,...",
                           help="many rows of a dataset file: one compiled model, one summary "
                                "table (posterior_summaries.csv), unconverged stars listed")
    posterior.add_argument("--sampler", choices=list(SAMPLERS), default=None,
                           help="posterior back end (default: nutpie when installed, the "
                                "fastest measured; else PyMC's NUTS; emcee: an ensemble "
                                "sampler without gradients)")
    posterior.add_argument("--prior", choices=PRIORS, default="uniform",
                           help="uniform over the training range +-10%% (default) or normals")
    posterior.add_argument("--likelihood", choices=LIKELIHOODS, default="quadratic",
                           help="the exact quadratic form of the pixel likelihood (default: "
                                "the same posterior, ~8x faster) or pixel by pixel")
    posterior.add_argument("--draws", type=POSITIVE_INT, default=1000)
    posterior.add_argument("--tune", type=NON_NEGATIVE_INT, default=1000)
    posterior.add_argument("--chains", type=POSITIVE_INT, default=4)
    posterior.add_argument("--seed", type=NON_NEGATIVE_INT, default=0)
    posterior.add_argument("--cv-accuracy", default=None,
                           help="accuracy.csv from 'skcannon validate' (CV scatter column)")
    posterior.add_argument("--continuum", default=None,
                           help="continuum pixels for an apStar input, only for a model that "
                                "does not record its preprocessing (then default: "
                                f"{DEFAULT_CONTINUUM})")
    posterior.add_argument("--output", "-o", default="posterior", help="output directory")
    posterior.set_defaults(func=cmd_posterior, owns_output=True)
