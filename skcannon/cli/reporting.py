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
    _note_stars_not_found(args, training.ids[validation.result.train_index], raw)
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


def _note_stars_not_found(args: argparse.Namespace, test_ids, raw) -> None:
    """Say on the command line when ``--model-star`` or ``--normalization-star`` is not among
    the stars a figure can show, and which star is shown instead (the report says it too)."""
    import sys

    from skcannon.report.science import star_to_show

    for option, wanted, ids, among in (
            ("--model-star", args.model_star, list(test_ids), "the training-half stars"),
            ("--normalization-star", args.normalization_star, [s.apogee_id for s in raw],
             "the --apstar spectra")):
        note = star_to_show(ids, wanted, among)[1] if ids else ""
        if note:
            print(f"note: {option}: {note}", file=sys.stderr)


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


def _require_usable(X, rows: list[int], ids, path, model) -> None:
    """Refuse rows (of ``X``, shape (n_stars, 3, n_pixels)) with too few usable pixels to
    sample ``model``'s labels: no more usable pixels (finite flux, positive finite inverse
    variance, a pixel the model uses) than labels."""
    from skcannon.errors import SkcannonError
    from skcannon.spectra import FLUX, IVAR

    flux, ivar = X[rows, FLUX], X[rows, IVAR]
    good = (ivar > 0) & np.isfinite(ivar) & np.isfinite(flux) & model.pixel_mask_
    counts = good.sum(axis=1)
    n_labels = len(model.label_names)
    short = np.flatnonzero(counts <= n_labels)
    if len(short):
        row, count = rows[short[0]], int(counts[short[0]])
        more = f" (and {len(short) - 1} more rows)" if len(short) > 1 else ""
        why = ("has no usable pixel (inverse variance 0 on every pixel the model uses)"
               if count == 0 else f"has {count} usable pixel{'s' * (count > 1)}; sampling "
               f"{n_labels} labels needs more than {n_labels}")
        raise SkcannonError(f"{path}: row {row} ({ids[row]}) {why}{more}")


def _cv_scatter(path: str | None, names: list[str]):
    """The CV scatter per label (shape (n_labels,), in ``names``' order) of ``--cv-accuracy``
    (``accuracy.csv`` of 'skcannon validate'), read and checked before any sampling; None
    without the option."""
    import pandas as pd

    from skcannon.errors import SkcannonError
    from skcannon.integrity import read_csv_table

    if path is None:
        return None
    where = f"--cv-accuracy: {path}"
    try:
        table = read_csv_table(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise SkcannonError(f"{where}: cannot be read as a CSV table ({exc})") from None
    missing = [c for c in ("label", "scatter") if c not in table]
    if missing:
        raise SkcannonError(f"{where}: no column {', '.join(missing)} (expected accuracy.csv "
                            "of 'skcannon validate': columns label, scatter, ...)")
    labels = table["label"].astype(str).str.strip()
    absent = [n for n in names if n not in set(labels)]
    twice = sorted(set(labels[labels.duplicated()]) & set(names))
    if absent or twice:
        what = (f"no row for {', '.join(absent)}" if absent
                else f"{', '.join(twice)} has several rows")
        raise SkcannonError(f"{where}: {what} (the model's labels are {', '.join(names)})")
    scatter = pd.to_numeric(table["scatter"], errors="coerce").to_numpy(float)
    cv = scatter[[int(np.flatnonzero(labels == n)[0]) for n in names]]
    bad = [n for n, v in zip(names, cv, strict=True) if not (np.isfinite(v) and v > 0)]
    if bad:
        raise SkcannonError(f"{where}: the scatter of {', '.join(bad)} is not a positive "
                            "number")
    return cv


def _posterior_input(args: argparse.Namespace, loaded):
    """The spectrum to sample (X, shape (1, 3, n_pixels)), its name and the reference
    uncertainties when a dataset holds them; an apStar file goes through the model's own
    preprocessing (or, for a model without, the standard steps with ``--continuum``)."""
    from pathlib import Path

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
        _require_usable(dataset.X, [args.row], dataset.ids, path, model)
        errors = [error_column(n) for n in model.label_names]
        sigma = (dataset.labels.iloc[args.row][errors].to_numpy(float)
                 if all(e in dataset.labels for e in errors) else None)
        return dataset.X[args.row : args.row + 1], dataset.ids[args.row], sigma
    # an apStar file, preprocessed exactly like the training data
    preprocessor = clone(pipeline_for(loaded, args.continuum)[:-1])
    spectra, normalized = normalize_apstar_files([path], preprocessor)
    _require_usable(normalized.normalized, [0], [spectra[0].apogee_id], path, model)
    return normalized.normalized, spectra[0].apogee_id, None


def cmd_posterior(args: argparse.Namespace) -> int:
    from pathlib import Path

    from skcannon.cli.common import load_model
    from skcannon.errors import SkcannonError
    from skcannon.pipeline.model import cannon_of
    from skcannon.pipeline.stages import posterior_stage

    loaded = load_model(args.model)
    model = cannon_of(loaded)
    if args.rows is not None:
        return _posterior_many(args, model)
    names = list(model.label_names)
    if args.draws * args.chains <= len(names):     # the corner plot needs more than that
        raise SkcannonError(f"--draws: {args.chains} chains x {args.draws} draws give "
                            f"{args.chains * args.draws} samples; the corner plot of "
                            f"{len(names)} labels needs more samples than labels")
    cv = _cv_scatter(args.cv_accuracy, names)       # checked before the sampling
    X, star, reference_sigma = _posterior_input(args, loaded)
    options, fixed = _posterior_options(args, [star], model)
    fit = model.infer_labels(X, **_fit_options(options, fixed))
    options["fixed"] = None if fixed is None else {k: float(v[0]) for k, v in fixed.items()}
    out = Path(args.output)
    outputs = posterior_stage(
        model, X[0, 0], X[0, 1], best_labels=fit.labels[0],
        formal_sigma=fit.formal_uncertainties[0], star=star, directory=out, seed=args.seed,
        cv_scatter=cv,
        reference_sigma=reference_sigma, prior=args.prior, likelihood=args.likelihood,
        sampler=args.sampler,
        chains=args.chains, draws=args.draws, tune=args.tune,
        corner_name="posterior_corner.png", options=options, best_rv=float(fit.rv[0]))
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


def _posterior_options(args: argparse.Namespace, ids, model) -> tuple[dict, dict | None]:
    """``posterior --fit-rv/--rv-max/--continuum-order/--fix`` as ``fit`` reads them:
    CannonPosterior's options (without ``fixed``) and the fixed labels' values per star
    (None without ``--fix``; a star without a value is an error: the posterior holds the
    same labels fixed for every star)."""
    from skcannon.cli.modelling import _fixed_labels, _nuisance_options
    from skcannon.errors import SkcannonError

    if args.fit_rv and model.state_.wavelength is None:
        raise SkcannonError("--fit-rv: the model has no wavelength grid (fit it with the "
                            "spectra's wavelength)")
    fixed = _fixed_labels(args.fix, ids, model.label_names)
    for label, values in (fixed or {}).items():
        missing = [str(i) for i, v in zip(ids, values, strict=True) if not np.isfinite(v)]
        if missing:
            raise SkcannonError(f"--fix: no value of {label} for {', '.join(missing[:5])}")
    return _nuisance_options(args), fixed


def _fit_options(options: dict, fixed: dict | None) -> dict:
    """``infer_labels`` keywords of the posterior's options (its starting fit)."""
    return {**{k: v for k, v in options.items() if k != "fixed"}, "fixed": fixed}


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
    _require_usable(dataset.X, rows, dataset.ids, args.spectrum, model)
    options, fixed = _posterior_options(args, list(dataset.ids[rows]), model)
    fit = model.infer_labels(dataset.X[rows], **_fit_options(options, fixed))
    first = None if fixed is None else {k: float(v[0]) for k, v in fixed.items()}
    sampler = CannonPosterior(model, prior=args.prior, likelihood=args.likelihood,
                              sampler=args.sampler, **options, fixed=first)
    print(f"priors: {sampler.priors}\nsampler: {sampler.sampler}, {args.chains} chains x "
          f"{args.draws} draws (+{args.tune} tuning) per star, {len(rows)} stars", flush=True)
    start = time.perf_counter()
    table = sample_many(sampler, dataset.flux[rows], dataset.ivar[rows],
                        ids=dataset.ids[rows], initial=fit.labels, draws=args.draws,
                        tune=args.tune, chains=args.chains, seed=args.seed, progress=True,
                        fixed=fixed)
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


def _checkpoint_apstar(args: argparse.Namespace, shared) -> list:
    """The apStar files of checkpoint 1: ``--apstar``, else the lab's star's file in the
    shared mirror when it is there, else the mirror's first DR17 apStar file (a stand-in the
    PDF names)."""
    from skcannon.apogee.constants import NORMALIZATION_STAR

    if args.apstar:
        return list(args.apstar)
    files = sorted(shared.apogee.glob("dr17/**/apStar-*.fits"))
    named = [f for f in files if NORMALIZATION_STAR in f.name]
    return (named or files)[:1]


def _checkpoint_posterior(args: argparse.Namespace, model, shared, validation, out):
    """The posterior of the mystery spectrum for checkpoint 3 (None, said, without PyMC or
    without the spectrum)."""
    import sys

    from skcannon.pipeline.stages import fit_flags, mystery_spectrum, posterior_stage

    try:
        import pymc  # noqa: F401
    except ImportError:  # pragma: no cover - the mcmc extra is optional
        print("note: PyMC is not installed: checkpoint 3 has no posterior", file=sys.stderr)
        return None
    if not shared.mystery.is_file() or not shared.continuum.is_file():
        print(f"note: --shared {args.shared}: no mystery spectrum ({shared.mystery}) or "
              "continuum file: checkpoint 3 has no posterior", file=sys.stderr)
        return None
    X, star = mystery_spectrum(shared.mystery, shared.continuum)
    fit = model.infer_labels(X)
    names = list(model.label_names)
    scatter = validation.result.accuracy.set_index("label").reindex(names)["scatter"]
    return posterior_stage(model, X[0, 0], X[0, 1], best_labels=fit.labels[0],
                           formal_sigma=fit.formal_uncertainties[0], star=star, directory=out,
                           seed=args.seed, cv_scatter=scatter.to_numpy(), chains=args.chains,
                           draws=args.draws, tune=args.tune, quiet=True,
                           flags=fit_flags(fit, 0), source=f"the mystery apStar spectrum "
                           f"{shared.mystery.name}, preprocessed like the training spectra")


def cmd_checkpoint(args: argparse.Namespace) -> int:
    from pathlib import Path

    from skcannon.apogee.catalog import QualityCuts
    from skcannon.cli.common import load_cannon
    from skcannon.data.build import default_preprocessor, normalize_apstar_files
    from skcannon.data.dataset import SpectralDataset
    from skcannon.pipeline.resources import SharedData
    from skcannon.pipeline.stages import validate_stage
    from skcannon.report import ScienceInputs
    from skcannon.report.checkpoints import CheckpointInputs, write_checkpoints

    out, shared = Path(args.output), SharedData(Path(args.shared))
    model = load_cannon(args.model)
    training = SpectralDataset.load(args.dataset)
    source = f"{args.dataset} ({model.provenance_.get('training', 'labelled spectra')})"
    validation = (validate_stage(training, list(model.label_names), seed=args.seed,
                                 output_dir=out, calibration_folds=0)
                  if args.number > 1 else None)
    files = _checkpoint_apstar(args, shared) if args.number == 1 else []
    raw, normalized = normalize_apstar_files(files, default_preprocessor(shared.continuum)) \
        if files else ([], None)
    science = ScienceInputs(model=model, training=training,
                            validation=validation.result if validation else None,
                            raw_spectra=raw, normalized=normalized, cuts=QualityCuts(),
                            isochrones=shared.isochrones)
    posterior = (_checkpoint_posterior(args, model, shared, validation, out)
                 if args.number == 3 else None)
    cv = (validation.figures["one_to_one"], "Cross-validation plot: fitted vs reference labels "
          f"of the test half (split random_state={args.seed}). Data source: {source}."
          ) if validation else None
    paths = write_checkpoints(CheckpointInputs(
        science, source, cv, posterior, posterior.source if posterior is not None else ""),
        out, numbers=[args.number], name=args.name)
    print(f"checkpoint {args.number}: {paths[0]}")
    return 0


def register(sub) -> None:
    """Add this module's commands to the ``skcannon`` subparsers."""
    report = sub.add_parser("report", help="all figures and tables in one HTML page and a PDF",
                            description="Corner plot, normalization, model vs data, gradient "
                                        "spectra with Mg/Si windows, s^2, Kiel diagram, spectra "
                                        "sequences, cross-validation: index.html, report.pdf.")
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

    _register_posterior(sub)
    _register_checkpoint(sub)


def _register_posterior(sub) -> None:
    """The ``posterior`` command."""
    from skcannon.cli.modelling import add_nuisance_options
    from skcannon.inference.posterior import LIKELIHOODS, PRIORS
    from skcannon.inference.samplers import SAMPLERS

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
    posterior.add_argument("--tune", type=POSITIVE_INT, default=1000,
                           help="tuning steps per chain, at least 1 (NUTS adapts its step "
                                "size there; nutpie panics with 0)")
    posterior.add_argument("--chains", type=POSITIVE_INT, default=4)
    posterior.add_argument("--seed", type=NON_NEGATIVE_INT, default=0)
    posterior.add_argument("--cv-accuracy", default=None,
                           help="accuracy.csv from 'skcannon validate' (CV scatter column)")
    posterior.add_argument("--continuum", default=None,
                           help="continuum pixels for an apStar input, only for a model that "
                                "does not record its preprocessing (then default: "
                                f"{DEFAULT_CONTINUUM})")
    add_nuisance_options(posterior)
    posterior.add_argument("--output", "-o", default="posterior", help="output directory")
    posterior.set_defaults(func=cmd_posterior, owns_output=True)


def _register_checkpoint(sub) -> None:
    """The ``checkpoint`` command."""
    checkpoint = sub.add_parser(
        "checkpoint", help="one of the lab's three checkpoint PDFs",
        description="Checkpoint 1: label corner plot, normalization of 2M21235315+1244123. "
                    "Checkpoint 2: model vs data of the training star 2M03533659+2512012, "
                    "the cross-validation plot. Checkpoint 3: Kiel diagram with MIST "
                    "isochrones, the PyMC posterior of the mystery spectrum. A named star "
                    "that is not in the data is replaced by a stated stand-in.")
    checkpoint.add_argument("number", type=int, choices=(1, 2, 3), help="the checkpoint")
    checkpoint.add_argument("dataset", help="the labelled training dataset (HDF5)")
    checkpoint.add_argument("--model", required=True, help="model file trained on it")
    checkpoint.add_argument("--apstar", nargs="*", default=None,
                            help="apStar files for checkpoint 1's normalization (default: the "
                                 "lab's star in the shared mirror)")
    checkpoint.add_argument("--name", default=None, metavar="'Firstname Lastname'",
                            help="the student's name: in the file name and under the title")
    add_shared_option(checkpoint, "the continuum pixels, isochrones and the mystery spectrum")
    checkpoint.add_argument("--seed", type=NON_NEGATIVE_INT, default=42,
                            help="random_state of the CV split and the sampler")
    checkpoint.add_argument("--draws", type=POSITIVE_INT, default=1000)
    checkpoint.add_argument("--tune", type=POSITIVE_INT, default=1000)
    checkpoint.add_argument("--chains", type=POSITIVE_INT, default=4)
    checkpoint.add_argument("--output", "-o", default="checkpoints", help="output directory")
    checkpoint.set_defaults(func=cmd_checkpoint, owns_output=True)
