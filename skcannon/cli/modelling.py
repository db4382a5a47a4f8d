"""Model commands: train, simulate, fit, validate, outliers."""

from __future__ import annotations

import argparse

import numpy as np

from skcannon.cli.common import (
    FINITE_FLOAT,
    NON_NEGATIVE_FLOAT,
    NON_NEGATIVE_INT,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    add_product_options,
    check_range,
    is_spectrum_fits,
    labels_to_use,
    load_cannon,
    load_model,
    pipeline_for,
    products_text,
)
from skcannon.errors import SkcannonError
from skcannon.integrity import write_csv_atomic
from skcannon.pipeline.resources import SharedData

DATASET_HELP = ("dataset file: an skcannon dataset (HDF5), or an npz/HDF5 of arrays 'flux', "
                "'flux_err' or 'ivar', optional 'wavelength' and one array per label")


def cmd_train(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from skcannon.data import open_dataset
    from skcannon.model import Cannon

    if Path(args.output).exists() and not args.overwrite:  # refuse before any work is done
        raise FileExistsError(f"{args.output} exists; pass --overwrite to replace it")
    dataset = open_dataset(args.dataset)
    labels = labels_to_use(args.labels, dataset.labels.columns, args.dataset)
    model = Cannon(label_names=tuple(labels), order=args.order,
                   regularization=args.regularization, verbose=int(not args.no_progress),
                   bad_labels="drop" if args.drop_bad_labels else "raise",
                   duplicates="drop" if args.drop_duplicates else "raise",
                   calibration_folds=args.calibration_folds,
                   missing_labels=args.missing_labels)
    label_err = _label_errors(dataset, labels, args) if args.label_errors else None
    print(f"training on {len(dataset)} stars x {dataset.flux.shape[1]} pixels, labels "
          f"{', '.join(labels)} ...", flush=True)
    start = time.perf_counter()
    model.fit(dataset.labels, dataset.X, wavelength=dataset.wavelength, label_err=label_err)
    seconds = time.perf_counter() - start
    _save_trained(model, dataset, args)
    ok = model.pixel_mask_
    n_terms = model.vectorizer_.n_terms
    chi2 = model.training_chi2_[ok].sum() / max(model.training_dof_[ok].sum(), 1)
    print(f"done in {seconds:.2f} s")
    print(f"  stars              {len(dataset) - len(model.dropped_)}{_dropped_note(model)}")
    print(f"  pixels             {ok.sum()} trained, {(~ok).sum()} excluded (masked in too "
          "many stars)")
    print(f"  parameters         {n_terms * ok.sum() + ok.sum()} ({n_terms} x pixels + pixels)")
    print(f"  median s^2         {np.median(model.s2_[ok]):.3g} (median s "
          f"{np.median(np.sqrt(model.s2_[ok])):.4f})")
    print(f"  training chi2/dof  {chi2:.3f}")
    if model.calibration_ is not None:
        floors = ", ".join(f"{n} {v:.3g}" for n, v in zip(labels, model.calibration_,
                                                           strict=True))
        print(f"  systematic floor   {floors} (added to the formal uncertainties)")
    if model.label_iterations_:
        print(f"  label posteriors   {model.label_iterations_} alternations of model and "
              "labels (training labels as unknowns)")
    print(f"model written to {args.output}")
    return 0


def _dropped_note(model) -> str:
    """`` (n dropped for unusable labels, m repeated spectra)`` for the stars ``fit`` left out."""
    from skcannon.model.checks import REPEATED_SPECTRUM

    repeats = int(model.dropped_["reason"].str.startswith(REPEATED_SPECTRUM).sum())
    reasons = [f"{count} {what}" for count, what in (
        (len(model.dropped_) - repeats, "dropped for unusable labels"),
        (repeats, "dropped as repeated spectra")) if count]
    return f" ({', '.join(reasons)})" if reasons else ""


def _label_errors(dataset, labels: list[str], args: argparse.Namespace):
    """The dataset's ``<LABEL>_ERR`` columns for ``--label-errors`` (SkcannonError naming the
    file and the missing columns)."""
    columns = [f"{name}_ERR" for name in labels]
    absent = [c for c in columns if c not in dataset.labels.columns]
    if absent:
        raise SkcannonError(f"{args.dataset}: --label-errors needs the column(s) "
                            f"{', '.join(absent)}; the dataset has none of that name")
    return dataset.labels[columns]


def cmd_continuum(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from skcannon.apogee.preprocessor import apogee_normalizer
    from skcannon.data import open_dataset
    from skcannon.integrity import atomic_write, write_text_atomic
    from skcannon.model.continuum_pixels import find_continuum_pixels
    from skcannon.preprocessing.continuum import load_continuum_pixels

    if Path(args.output).exists() and not args.overwrite:
        raise FileExistsError(f"{args.output} exists; pass --overwrite to replace it")
    dataset = open_dataset(args.dataset)
    labels = labels_to_use(args.labels, dataset.labels.columns, args.dataset)
    seed = None if args.seed_pixels is None else load_continuum_pixels(args.seed_pixels)
    found = find_continuum_pixels(
        dataset.X, dataset.labels, apogee_normalizer(seed, wavelength=dataset.wavelength),
        label_names=tuple(labels), seed=seed, n_pixels=args.n_pixels,
        flux_tol=args.flux_tol, max_iter=args.max_iter)
    with atomic_write(args.output, overwrite=True) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, pixels_cannon=found.mask, score=found.score)
    record = {**found.criteria, "converged": found.converged, "changes": found.changes,
              "dataset": str(args.dataset), "seed_pixels": args.seed_pixels}
    write_text_atomic(Path(args.output).with_suffix(".json"), json.dumps(record, indent=2))
    print(f"{int(found.mask.sum())} continuum pixels after {len(found.changes)} iterations "
          f"({'stable' if found.converged else 'not stable'}; pixels changed per iteration: "
          f"{found.changes}); written to {args.output} and its .json")
    if args.compare:
        other = load_continuum_pixels(args.compare)
        if other.shape == found.mask.shape:
            print(f"  {int(np.sum(other & found.mask))} of them are among the "
                  f"{int(other.sum())} pixels of {args.compare}")
    return 0


def _save_trained(model, dataset, args: argparse.Namespace) -> None:
    """The fitted Pipeline (the dataset's recorded preprocessing, then the model) with
    :func:`skcannon.save`; a dataset that records none: the bare Cannon (``Cannon.save``)."""
    from skcannon.persistence import pipeline_from_recipe, save

    provenance = {"dataset": str(args.dataset),
                  "dataset_provenance": dataset.provenance.get("simulated_from", "prepared"),
                  "dropped_stars": model.dropped_.astype(str).to_dict("records")}
    recipe = dataset.provenance.get("preprocessing_recipe")
    if not recipe:
        model.save(args.output, overwrite=args.overwrite, provenance=provenance)
        return
    try:
        pipeline = pipeline_from_recipe(model, recipe)
    except ValueError as exc:
        raise SkcannonError(f"{args.dataset}: its preprocessing recipe: {exc}") from exc
    save(pipeline, args.output, overwrite=args.overwrite, provenance=provenance)


def cmd_simulate(args: argparse.Namespace) -> int:

    from skcannon.apogee.label_tables import dr12_giant_labels
    from skcannon.apogee.reference import load_reference_model
    from skcannon.data.dataset import SpectralDataset
    from skcannon.data.simulate import noise_templates_from_apstar, simulate_spectra

    check_range("--snr", args.snr)
    model = (load_reference_model(args.reference) if args.reference
             else load_cannon(args.model))
    table = dr12_giant_labels(args.labels, model.label_names)
    if args.n > len(table):                 # each star's labels are drawn once
        raise SkcannonError(f"--n: {args.n} spectra asked, but {args.labels} has "
                            f"{len(table)} giants with usable {', '.join(model.label_names)} "
                            f"labels (each simulated once); ask for at most {len(table)}")
    rng = np.random.default_rng(args.seed)
    table = table.sample(args.n, random_state=args.seed).reset_index(drop=True)
    snr = rng.uniform(args.snr[0], args.snr[-1], len(table))
    templates = noise_templates_from_apstar(args.apstar) if args.apstar else None
    X = simulate_spectra(model, table, snr, rng, templates)
    table["SNR"] = snr
    dataset = SpectralDataset.from_spectra(
        model.wavelength_, X, table,
        provenance={"simulated_from": args.reference or args.model, "seed": args.seed,
                    "labels": str(args.labels), "snr": list(args.snr),
                    "noise_templates": [str(p) for p in args.apstar or []]})
    dataset.save(args.output, overwrite=args.overwrite)
    print(f"{len(table)} spectra simulated from {args.reference or args.model} at real labels "
          f"({args.labels}), SNR {args.snr[0]:g}-{args.snr[-1]:g}, written to {args.output}")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    import time

    from skcannon.apogee.catalog import check_table_output
    from skcannon.apogee.catalog import write_selection as write_table
    from skcannon.data import open_dataset
    from skcannon.pipeline.model import cannon_of

    check_table_output(args.output)           # before the work, not after it
    loaded = load_model(args.model)
    if args.product or len(args.dataset) > 1 or is_spectrum_fits(args.dataset[0]):
        return _fit_files(args, loaded)
    model = cannon_of(loaded)
    source = args.dataset[0]
    dataset = open_dataset(source)
    model.check_wavelength(dataset.wavelength if dataset.has_wavelength else None, source,
                           n_pixels=dataset.flux.shape[1])
    start = time.perf_counter()
    ids = list(dataset.ids)
    if args.visits and args.fix:
        raise SkcannonError("--fix: not with --visits (visit fits hold no label fixed)")
    if args.visits:
        fit = model.infer_visits(dataset.X, groups=ids, rv_bounds=(-args.rv_max, args.rv_max),
                                 continuum_order=args.continuum_order, n_starts=args.starts,
                                 seed=args.seed)
        ids = list(dict.fromkeys(ids))                   # one row per star, first appearance
    else:
        fit = model.infer_labels(dataset.X, method=args.method, n_starts=args.starts,
                                 seed=args.seed, fixed=_fixed_labels(args.fix, ids,
                                                                     model.label_names),
                                 **_nuisance_options(args))
    seconds = time.perf_counter() - start
    table = fit.to_frame(ids=ids)
    write_table(table, args.output)
    print(f"{len(table)} stars fitted in {seconds:.2f} s ({len(table) / seconds:.0f}/s); "
          f"{int((~fit.converged).sum())} not converged, {int(fit.on_bound.sum())} on a bound, "
          f"{int(fit.starts_disagree.sum())} with disagreeing starts; written to {args.output}")
    return 0


def _nuisance_options(args: argparse.Namespace) -> dict:
    """``infer_labels`` options of ``fit --fit-rv/--rv-max/--continuum-order``."""
    return {"fit_rv": args.fit_rv, "rv_bounds": (-args.rv_max, args.rv_max),
            "continuum_order": args.continuum_order}


def _fixed_labels(specs, ids, label_names) -> dict | None:
    """``fit --fix`` values: LABEL=NUMBER (every star) or LABEL=TABLE[:COLUMN] (a .csv or
    .fits table with APOGEE_ID, matched to the dataset's ids; stars not in it: fitted).

    Parameters
    ----------
    specs : list of str or None
    ids : sequence of str  the dataset's APOGEE_IDs
    label_names : sequence of str  the model's labels

    Returns
    -------
    dict of str to ndarray of shape (n_stars,), or None without ``--fix``
    """
    if not specs:
        return None
    fixed = {}
    for spec in specs:
        label, _, source = spec.partition("=")
        if label not in label_names or not source:
            raise SkcannonError(f"--fix: {spec}: give LABEL=VALUE or LABEL=TABLE[:COLUMN] with "
                                f"a label of the model ({', '.join(label_names)})")
        try:
            fixed[label] = np.full(len(ids), float(source))
            continue
        except ValueError:
            pass
        path, _, column = source.partition(":")
        fixed[label] = _fixed_column(spec, path, column or label, ids)
    return fixed


def _fixed_column(spec: str, path: str, column: str, ids) -> np.ndarray:
    """Column ``column`` of the table at ``path`` by APOGEE_ID, in the order of ``ids``."""
    import pandas as pd

    try:
        if path.lower().endswith((".fits", ".fit", ".fits.gz")):
            from astropy.table import Table

            table = Table.read(path).to_pandas()
        else:
            table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise SkcannonError(f"--fix: {path}: cannot read a table ({exc})") from None
    if "APOGEE_ID" not in table or column not in table:
        raise SkcannonError(f"--fix: {spec}: {path} needs APOGEE_ID and {column} columns")
    values = pd.to_numeric(table[column], errors="coerce")
    keys = table["APOGEE_ID"].astype(str).str.strip()
    lookup = pd.Series(values.to_numpy(), index=keys).groupby(level=0).first()
    return lookup.reindex([str(i).strip() for i in ids]).to_numpy(dtype=float)


def _fit_visit_files(args: argparse.Namespace, pipeline):
    """``fit --visits`` on spectrum files: every readable spectrum (an apVisit file, each
    visit row of an apStar or asStar file, the visits of a normalized array file ...) through
    the model's preprocessing, then the ones sharing an APOGEE_ID fitted together
    (:meth:`Cannon.infer_visits`); one row per star."""
    from skcannon.data.products import prepare_for_model
    from skcannon.survey.chunk import read_inputs
    from skcannon.survey.visits import star_visits

    rows, spectra = read_inputs(args.dataset, product=args.product)
    if not spectra:
        raise SkcannonError(f"--visits: no readable spectrum among {len(args.dataset)} files "
                            f"({'; '.join(rows.PROBLEM.astype(str))})")
    spectra = [star_visits(found) for found in spectra]       # apStar: its visit rows
    X = prepare_for_model(spectra, pipeline[:-1])
    ids = np.array([i for found in spectra for i in found.ids], dtype=str)
    usable = np.any((X[:, 1] > 0) & np.isfinite(X[:, 0]), axis=1)
    if not usable.any():
        raise SkcannonError("--visits: no spectrum has a usable pixel after the model's "
                            "preprocessing")
    fit = pipeline[-1].cannon_.infer_visits(
        X[usable], groups=ids[usable], rv_bounds=(-args.rv_max, args.rv_max),
        continuum_order=args.continuum_order, n_starts=args.starts, seed=args.seed)
    return fit.to_frame(ids=list(dict.fromkeys(ids[usable])))


def _fit_files(args: argparse.Namespace, model) -> int:
    """``fit`` on spectrum files of any product: read, the model's preprocessing, one batch."""
    import time

    from skcannon.apogee.catalog import write_selection as write_table
    from skcannon.survey import label_chunk

    if args.fix:
        raise SkcannonError("--fix: give a dataset file (its APOGEE_IDs match the table); "
                            "spectrum files are fitted without fixed labels")
    pipeline = pipeline_for(model, args.continuum)
    pipeline[-1].set_params(fit_rv=args.fit_rv, rv_max=args.rv_max,
                            continuum_order=args.continuum_order)
    start = time.perf_counter()
    if args.visits:
        table = _fit_visit_files(args, pipeline)
        write_table(table, args.output)
        print(f"{len(table)} stars fitted from their visits in "
              f"{time.perf_counter() - start:.2f} s; {int(table.RV_VARIABLE.sum())} "
              f"RV-variable; written to {args.output}")
        return 0
    table = label_chunk(args.dataset, pipeline, product=args.product,
                        n_starts=args.starts, seed=args.seed, method=args.method)
    seconds = time.perf_counter() - start
    write_table(table, args.output)
    bad = table[table.STATUS != "fitted"]
    print(f"{len(table) - len(bad)} spectra fitted in {seconds:.2f} s; {len(bad)} bad files; "
          f"{int(table.CONFIDENT.sum()) if 'CONFIDENT' in table else 0} confident; "
          f"written to {args.output}")
    for row in bad.itertuples():
        print(f"  bad file: {row.PROBLEM}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from skcannon.data import open_dataset
    from skcannon.evaluation import grid_search, kfold_validate
    from skcannon.labels import reference_column
    from skcannon.model import Cannon, CannonRegressor
    from skcannon.pipeline.stages import validate_stage

    dataset = open_dataset(args.dataset)
    labels = labels_to_use(args.labels, dataset.labels.columns, args.dataset)
    if args.folds > len(dataset) // 2:
        raise SkcannonError(f"--folds: {args.folds} folds of {len(dataset)} stars leave fewer "
                            "than 2 stars per fold; use fewer folds")
    out = Path(args.output)
    validation = validate_stage(dataset, labels, seed=args.seed, output_dir=out)
    result = validation.result
    result.model.save(out / "model_train_half.h5", overwrite=True)
    dataset.subset(result.test_index).save(out / "test_half.h5", overwrite=True)
    table = result.fit.to_frame(ids=dataset.ids[result.test_index])
    for i, name in enumerate(labels):
        table[reference_column(name)] = result.reference[:, i]
    write_csv_atomic(table, out / "test_half_labels.csv", index=False)
    write_csv_atomic(result.by_snr, out / "accuracy_by_snr.csv", index=False)
    print(f"train/test halves (random_state={args.seed}): {len(result.train_index)} / "
          f"{len(result.test_index)} stars; accuracy on the test half:")
    print(result.accuracy.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    X, y = dataset.X, dataset.label_array(labels)
    if args.folds > 1:
        folds = kfold_validate(CannonRegressor(Cannon(labels)), X, y, labels, n_splits=args.folds,
                               random_state=args.seed, progress=True)
        write_csv_atomic(folds, out / "kfold.csv", index=False)
        print(f"\n{args.folds}-fold cross-validation (robust scatter per fold):")
        print(folds[["fold", *[f"robust_scatter_{n}" for n in labels]]].to_string(
            index=False, float_format=lambda v: f"{v:.4g}"))
    if args.grid:
        search = grid_search(CannonRegressor(Cannon(labels)), X, y,
                             {"cannon__regularization": [0.0, 10.0, 100.0]}, labels,
                             progress=True)
        import pandas as pd

        write_csv_atomic(pd.DataFrame(search.cv_results_).drop(columns="params"),
                         out / "grid_search.csv", index=False)
        print(f"\ngrid search: best {search.best_params_}")
    print(f"\noutputs in {out}/")
    return 0


def cmd_outliers(args: argparse.Namespace) -> int:
    from pathlib import Path

    from skcannon.data import open_dataset
    from skcannon.evaluation import find_outliers
    from skcannon.plotting import model_vs_data_figure, save_figure

    if args.window[0] >= args.window[1]:
        raise SkcannonError(f"--window: {args.window[0]:g} {args.window[1]:g} is not an "
                            "increasing range (give the lower wavelength first)")
    model = load_cannon(args.model)
    dataset = open_dataset(args.dataset)
    model.check_wavelength(dataset.wavelength if dataset.has_wavelength else None, args.dataset,
                           n_pixels=dataset.flux.shape[1])
    names = list(model.label_names)
    fit = model.infer_labels(dataset.X)
    reference = dataset.label_array(names)
    info = dataset.labels.copy()
    info["FLAGS"] = dataset.flags
    table = find_outliers(reference, fit, names, k=args.k, info=info)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(table, out / "outliers.csv", index=False)
    span = ({"window": tuple(args.window)} if dataset.has_wavelength else
            {"window": None, "axis_label": "pixel (no wavelengths recorded)"})
    for row in table.head(args.max_plots).itertuples():
        n = row.index
        figure = model_vs_data_figure(
            dataset.wavelength, dataset.flux[n], dataset.ivar[n],
            model.predict(fit.labels[n : n + 1])[0], **span,
            title=f"{row.APOGEE_ID}: {row.EXPLANATION}", model_label="model at fitted labels")
        save_figure(figure, out / f"outlier_{row.APOGEE_ID}.png")
    print(f"{len(table)} of {len(dataset)} stars off by more than {args.k:g} x the robust "
          f"scatter in some label:")
    if len(table):
        print(table[["APOGEE_ID", "REDUCED_CHI2", "EXPLANATION"]].to_string(index=False))
    print(f"table and data-vs-model plots in {out}/")
    return 0


def _register_training(sub) -> None:
    train = sub.add_parser("train", help="train a Cannon model on a dataset file",
                           description="Learn theta and s^2 per pixel from a dataset written by "
                                       "'skcannon prepare' or 'skcannon simulate'; write the "
                                       "model file (HDF5) and a summary.")
    train.add_argument("dataset", help=DATASET_HELP)
    train.add_argument("--output", "-o", default="model.h5", help="model file to write")
    train.add_argument("--labels", nargs="+", default=None,
                       help="label columns (default: those of TEFF LOGG FE_H MG_FE SI_FE "
                            "ALPHA_M M_H present)")
    train.add_argument("--order", type=POSITIVE_INT, default=2, help="polynomial order (default 2)")
    train.add_argument("--regularization", type=NON_NEGATIVE_FLOAT, default=0.0,
                       help="L1 strength (default 0: the classic Cannon)")
    train.add_argument("--calibration-folds", type=NON_NEGATIVE_INT, default=0,
                       help="learn calibrated uncertainties by cross-validation in this many "
                            "folds (10 is a good choice; 0: formal uncertainties only)")
    train.add_argument("--drop-bad-labels", action="store_true",
                       help="drop stars with unusable labels (nulls such as -9999, NaN, "
                            "implausible values) and count them, instead of stopping")
    train.add_argument("--drop-duplicates", action="store_true",
                       help="drop training spectra identical to an earlier one (counted as one "
                            "star) and count them, instead of stopping")
    train.add_argument("--label-errors", action="store_true",
                       help="treat the training labels as uncertain: the dataset's <LABEL>_ERR "
                            "columns as Gaussian priors (errors-in-variables; docs/training.rst)")
    train.add_argument("--missing-labels", choices=["drop", "infer"], default=None,
                       help="stars with some labels missing (NaN, -9999): drop them, or train "
                            "with the labels they have and infer the rest (default: as "
                            "--drop-bad-labels says)")
    train.add_argument("--overwrite", action="store_true", help="replace an existing file")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    simulate = sub.add_parser("simulate", help="simulate labelled spectra from a model",
                              description="Draw normalized spectra from a trained model (or the "
                                          "published reference model) at real DR12 giant "
                                          "labels, with noise at the given SNR and real "
                                          "bad-pixel masks; write a dataset file.")
    source = simulate.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a model file")
    source.add_argument("--reference", metavar="DIR",
                        help="the reference model directory (cannon_apokasc_dr12)")
    simulate.add_argument("--labels", default=str(SharedData().dr12_labels),
                          help="real label table (default: %(default)s)")
    simulate.add_argument("--n", type=POSITIVE_INT, default=1000,
                          help="number of spectra (at most the number of giants in --labels: "
                               "each star's labels are used once)")
    simulate.add_argument("--snr", type=POSITIVE_FLOAT, nargs="+", default=[50.0, 250.0],
                          help="SNR, or a range MIN MAX drawn uniformly (default 50 250)")
    simulate.add_argument("--apstar", nargs="*", default=None,
                          help="real apStar files whose error shapes and masks are used")
    simulate.add_argument("--seed", type=NON_NEGATIVE_INT, default=0, help="random seed")
    simulate.add_argument("--output", "-o", default="simulated.h5", help="dataset to write")
    simulate.add_argument("--overwrite", action="store_true", help="replace an existing file")
    simulate.set_defaults(func=cmd_simulate)


def add_nuisance_options(parser, *, fix: bool = True) -> None:
    """The options beyond the classic labels (``fit``, ``posterior``, ``survey``): --fit-rv,
    --rv-max, --continuum-order, and (``fix``) --fix (read by :func:`_nuisance_options` and
    :func:`_fixed_labels`)."""
    parser.add_argument("--fit-rv", action="store_true",
                        help="fit a radial velocity with the labels (columns RV, RV_ERR)")
    parser.add_argument("--rv-max", type=POSITIVE_FLOAT, default=400.0,
                        help="with --fit-rv: velocity bounds +-RV_MAX km/s (default 400)")
    parser.add_argument("--continuum-order", type=NON_NEGATIVE_INT, default=None,
                        help="fit a per-chip continuum polynomial of this order with the "
                             "labels")
    if not fix:
        return
    parser.add_argument("--fix", action="append", default=None,
                        metavar="LABEL=VALUE|TABLE[:COL]",
                        help="hold a label fixed: one value for every star, or a .csv/.fits "
                             "table's column matched by APOGEE_ID (repeatable)")


def _add_physics_options(fit) -> None:
    """``fit``'s options beyond the classic fit: RV, continuum, fixed labels, visits."""
    add_nuisance_options(fit)
    fit.add_argument("--visits", action="store_true",
                     help="spectra (dataset rows or files) sharing an APOGEE_ID are one "
                          "star's visits: fit them together (one row per star; an RV per "
                          "visit, RV_VARIABLE); an apStar/asStar file gives its visit rows")


def _register_inference(sub) -> None:
    from skcannon.inference.methods import FIT_METHODS

    fit = sub.add_parser("fit", help="infer labels of a dataset's spectra with a model",
                         description="Batched multi-start label fitting (or scipy TRF star by "
                                     "star); writes labels, uncertainties, covariances, chi2 "
                                     "and flags per star.")
    fit.add_argument("dataset", nargs="+",
                     help=f"{DATASET_HELP}; or spectrum files of any product "
                          f"({products_text()}), prepared with the model's "
                          "own preprocessing")
    fit.add_argument("--model", required=True, help="model file")
    add_product_options(fit, "read the inputs as spectrum files of this product (default: a "
                             "dataset file, or each FITS file's own product)")
    fit.add_argument("--output", "-o", default="labels.csv", help=".csv, .fits or .parquet")
    fit.add_argument("--method", choices=list(FIT_METHODS), default="lm",
                     help="label-fitting method (registered in skcannon.inference.methods)")
    fit.add_argument("--starts", type=NON_NEGATIVE_INT, default=4,
                     help="starts per star besides the linearized guess (default 4)")
    fit.add_argument("--seed", type=NON_NEGATIVE_INT, default=0, help="seed of the spread starts")
    fit.add_argument("--no-progress", action="store_true",
                     help="no progress lines (--method trf reports every batch of stars)")
    _add_physics_options(fit)
    fit.set_defaults(func=cmd_fit)

    validate = sub.add_parser("validate", help="cross-validate the Cannon on a dataset",
                              description="Train on one half (train_test_split, --seed), fit "
                                          "the other, report bias/scatter per label and by "
                                          "SNR, pulls and one-to-one plots; k-fold "
                                          "cross_validate and an optional GridSearchCV.")
    validate.add_argument("dataset", help=DATASET_HELP)
    validate.add_argument("--labels", nargs="+", default=None, help="label columns")
    validate.add_argument("--seed", type=NON_NEGATIVE_INT, default=42,
                          help="random_state of the split")
    validate.add_argument("--folds", type=NON_NEGATIVE_INT, default=5, help="k of KFold (<2: skip)")
    validate.add_argument("--grid", action="store_true",
                          help="also GridSearchCV over the regularization")
    validate.add_argument("--output", "-o", default="validation", help="output directory")
    validate.set_defaults(func=cmd_validate, owns_output=True)

    outliers = sub.add_parser("outliers", help="list and explain badly fitted stars",
                              description="Fit a dataset with a model, list stars off by more "
                                          "than k x the robust scatter with what could explain "
                                          "them, and plot data vs model for each.")
    outliers.add_argument("dataset", help=DATASET_HELP)
    outliers.add_argument("--model", required=True, help="model file")
    outliers.add_argument("--k", type=POSITIVE_FLOAT, default=3.0,
                          help="threshold in robust scatters")
    outliers.add_argument("--window", type=FINITE_FLOAT, nargs=2, default=[16000, 16100],
                          help="wavelength window of the plots (Angstrom)")
    outliers.add_argument("--max-plots", type=NON_NEGATIVE_INT, default=20,
                          help="at most this many plots")
    outliers.add_argument("--output", "-o", default="outliers", help="output directory")
    outliers.set_defaults(func=cmd_outliers, owns_output=True)


def _register_continuum(sub) -> None:
    continuum = sub.add_parser(
        "continuum", help="find continuum pixels from labelled, unnormalized spectra",
        description="The iteration of Ness et al. 2015 (2.3, 5.3): normalize per APOGEE chip, "
                    "train, keep the pixels with flux ~1, small label gradients and small s^2, "
                    "repeat until stable. Writes a pixel file (npz, key pixels_cannon) and the "
                    "criteria (.json beside it).")
    continuum.add_argument("dataset", help=DATASET_HELP + " (flux NOT continuum-normalized)")
    continuum.add_argument("--labels", nargs="+", default=None, help="label columns")
    continuum.add_argument("--seed-pixels", default=None,
                           help="first continuum pixels (a pixel file; default: every pixel)")
    continuum.add_argument("--n-pixels", type=POSITIVE_INT, default=529,
                           help="continuum pixels to keep (default 529, the lab's count)")
    continuum.add_argument("--flux-tol", type=POSITIVE_FLOAT, default=0.02,
                           help="largest |theta_0 - 1| (default 0.02)")
    continuum.add_argument("--max-iter", type=POSITIVE_INT, default=20,
                           help="most iterations (default 20)")
    continuum.add_argument("--compare", default=None,
                           help="a pixel file to report the overlap with (e.g. the lab's)")
    continuum.add_argument("--output", "-o", default="continuum_pixels.npz",
                           help="pixel file to write")
    continuum.add_argument("--overwrite", action="store_true", help="replace an existing file")
    continuum.set_defaults(func=cmd_continuum)


def register(sub) -> None:
    """Add this module's commands to the ``skcannon`` subparsers."""
    _register_training(sub)
    _register_continuum(sub)
    _register_inference(sub)
