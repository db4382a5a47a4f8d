"""The ``skcannon`` command: a thin layer over the library (imports happen inside commands)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from skcannon._version import __version__
from skcannon.apogee.constants import ARCHIVE_URL_ENV, DATA_DIR_ENV, DEFAULT_FIELDS


def _add_cut_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("quality cuts")
    group.add_argument("--fields", nargs="+", default=list(DEFAULT_FIELDS), metavar="FIELD",
                       help="FIELD values to select (default: %(default)s)")
    group.add_argument("--all-fields", action="store_true", help="do not select by field")
    group.add_argument("--min-snr", type=float, default=50.0, help="minimum SNR (default 50)")
    group.add_argument("--max-logg", type=float, default=4.0,
                       help="drop dwarfs with LOGG above this (default 4)")
    group.add_argument("--max-teff", type=float, default=5700.0,
                       help="drop stars with TEFF above this (default 5700)")
    group.add_argument("--min-feh", type=float, default=-1.0,
                       help="drop stars with FE_H below this (default -1)")
    group.add_argument("--allow-missing-labels", action="store_true",
                       help="keep stars lacking a label (ASPCAP null -9999 or NaN)")
    group.add_argument("--keep-duplicates", action="store_true",
                       help="keep every entry of a star observed in several fields/telescopes "
                            "(default: keep the highest-SNR entry)")


def _cuts(args: argparse.Namespace):
    from skcannon.apogee.catalog import QualityCuts

    return QualityCuts(
        require_labels=not args.allow_missing_labels, min_snr=args.min_snr,
        max_logg=args.max_logg, max_teff=args.max_teff, min_feh=args.min_feh,
        duplicates="keep" if args.keep_duplicates else "highest_snr",
    )


def _add_archive_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--archive-url", default=None,
                        help=f"archive base URL (default: ${ARCHIVE_URL_ENV} or the SDSS SAS)")
    parser.add_argument("--data-dir", default=None,
                        help=f"data/cache directory (default: ${DATA_DIR_ENV} or "
                             "~/.cache/skcannon)")
    parser.add_argument("--workers", type=int, default=4, help="parallel downloads (default 4)")
    parser.add_argument("--retries", type=int, default=3,
                        help="retries per file after a failure (default 3)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def cmd_select(args: argparse.Namespace) -> int:
    from skcannon.apogee.catalog import (
        format_cut_table,
        query_skyserver,
        read_catalog,
        select_giants,
        write_selection,
    )

    fields = None if args.all_fields else args.fields
    if args.catalog == "skyserver":
        catalog = query_skyserver(fields or DEFAULT_FIELDS)
    else:
        catalog = read_catalog(args.catalog, data_dir=args.data_dir)
    selection = select_giants(catalog, fields=fields, cuts=_cuts(args))
    print(format_cut_table(selection.attrs["cut_table"]))
    path = write_selection(selection, args.output)
    print(f"{len(selection)} stars written to {path}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from skcannon.apogee.catalog import read_selection
    from skcannon.apogee.download import download_apstar

    selection = read_selection(args.selection)
    report = download_apstar(selection, archive=args.archive_url, directory=args.data_dir,
                             n_workers=args.workers, retries=args.retries,
                             progress=not args.no_progress)
    print(report.summary())
    for record in report.failed:
        print(f"  failed: {record['apogee_id']} {record['url']}: {record['error']}")
    return 1 if report.failed else 0


def cmd_read(args: argparse.Namespace) -> int:
    from skcannon.apogee.reader import read_apstar
    from skcannon.errors import BadFileError

    status = 0
    for path in args.files:
        try:
            s = read_apstar(path)
        except BadFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
            continue
        print(f"{s.apogee_id}  field={s.field}  telescope={s.telescope}  SNR={s.snr:.1f}  "
              f"visits={s.nvisits}  pixels={s.flux.size}  bad={s.bad_fraction:.1%}  "
              f"λ={s.wavelength[0]:.1f}-{s.wavelength[-1]:.1f} Å")
    return status


def cmd_serve_mirror(args: argparse.Namespace) -> int:
    import time

    from skcannon.apogee.mirror import ArchiveMirror

    with ArchiveMirror(args.directory, port=args.port) as mirror:
        print(f"serving {args.directory} as an archive at {mirror.url} (Ctrl-C to stop)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


def default_label_columns(columns) -> list[str]:
    """The mission's labels present in a table, then [alpha/M] and [M/H] if present."""
    return [c for c in ("TEFF", "LOGG", "FE_H", "MG_FE", "SI_FE", "ALPHA_M", "M_H")
            if c in columns]


def cmd_train(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from skcannon.dataset import SpectralDataset
    from skcannon.model import Cannon

    if Path(args.output).exists() and not args.overwrite:  # refuse before any work is done
        raise FileExistsError(f"{args.output} exists; pass --overwrite to replace it")
    dataset = SpectralDataset.load(args.dataset)
    labels = args.labels or default_label_columns(dataset.labels.columns)
    model = Cannon(label_names=tuple(labels), order=args.order,
                   regularization=args.regularization)
    print(f"training on {len(dataset)} stars x {dataset.flux.shape[1]} pixels, labels "
          f"{', '.join(labels)} ...", flush=True)
    start = time.perf_counter()
    model.fit(dataset.labels, dataset.X, wavelength=dataset.wavelength)
    seconds = time.perf_counter() - start
    model.save(args.output, overwrite=args.overwrite,
               provenance={"dataset": str(args.dataset), "dataset_provenance":
                           dataset.provenance.get("simulated_from", "prepared")})
    ok = model.pixel_mask_
    n_terms = model.vectorizer_.n_terms
    chi2 = model.training_chi2_[ok].sum() / max(model.training_dof_[ok].sum(), 1)
    print(f"done in {seconds:.2f} s")
    print(f"  stars              {len(dataset)}")
    print(f"  pixels             {ok.sum()} trained, {(~ok).sum()} excluded (masked in too "
          "many stars)")
    print(f"  parameters         {n_terms * ok.sum() + ok.sum()} ({n_terms} x pixels + pixels)")
    print(f"  median s^2         {np.median(model.s2_[ok]):.3g} (median s "
          f"{np.median(np.sqrt(model.s2_[ok])):.4f})")
    print(f"  training chi2/dof  {chi2:.3f}")
    print(f"model written to {args.output}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:

    from skcannon.dataset import SpectralDataset
    from skcannon.model import Cannon, load_reference_model
    from skcannon.simulate import dr12_giant_labels, noise_templates_from_apstar, simulate_spectra

    model = (load_reference_model(args.reference) if args.reference
             else Cannon.load(args.model))
    table = dr12_giant_labels(args.labels, model.label_names)
    rng = np.random.default_rng(args.seed)
    table = table.sample(min(args.n, len(table)), random_state=args.seed).reset_index(drop=True)
    snr = rng.uniform(args.snr[0], args.snr[-1], len(table))
    templates = noise_templates_from_apstar(args.apstar) if args.apstar else None
    X = simulate_spectra(model, table, snr, rng, templates)
    table["SNR"] = snr
    dataset = SpectralDataset(
        wavelength=model.wavelength_, flux=X[:, 0], ivar=X[:, 1],
        pixmask=X[:, 2].astype(np.int64), labels=table,
        flags=np.zeros(len(table), dtype=np.int64),
        provenance={"simulated_from": args.reference or args.model, "seed": args.seed,
                    "labels": str(args.labels), "snr": list(args.snr),
                    "noise_templates": [str(p) for p in args.apstar or []]})
    dataset.save(args.output, overwrite=args.overwrite)
    print(f"{len(table)} spectra simulated from {args.reference or args.model} at real labels "
          f"({args.labels}), SNR {args.snr[0]:g}-{args.snr[-1]:g}, written to {args.output}")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    import time

    from skcannon.apogee.catalog import write_selection as write_table
    from skcannon.dataset import SpectralDataset
    from skcannon.model import Cannon

    model = Cannon.load(args.model)
    dataset = SpectralDataset.load(args.dataset)
    start = time.perf_counter()
    fit = model.infer_labels(dataset.X, method=args.method, n_starts=args.starts,
                             seed=args.seed)
    seconds = time.perf_counter() - start
    table = fit.to_frame(ids=dataset.ids)
    write_table(table, args.output)
    print(f"{len(table)} stars fitted in {seconds:.2f} s ({len(table) / seconds:.0f}/s); "
          f"{int((~fit.converged).sum())} not converged, {int(fit.on_bound.sum())} on a bound, "
          f"{int(fit.starts_disagree.sum())} with disagreeing starts; written to {args.output}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from skcannon.dataset import SpectralDataset
    from skcannon.model import CannonRegressor
    from skcannon.plotting import one_to_one_figure, pull_figure, save_figure
    from skcannon.validation import grid_search, kfold_validate, split_validate

    dataset = SpectralDataset.load(args.dataset)
    labels = args.labels or default_label_columns(dataset.labels.columns)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    X = dataset.X
    result = split_validate(X, dataset.labels, labels, random_state=args.seed,
                            wavelength=dataset.wavelength)
    result.model.save(out / "model_train_half.h5", overwrite=True)
    dataset.subset(result.test_index).save(out / "test_half.h5", overwrite=True)
    table = result.fit.to_frame(ids=dataset.ids[result.test_index])
    for i, name in enumerate(labels):
        table[f"{name}_REF"] = result.reference[:, i]
    table.to_csv(out / "test_half_labels.csv", index=False)
    result.accuracy.to_csv(out / "accuracy.csv", index=False)
    result.by_snr.to_csv(out / "accuracy_by_snr.csv", index=False)
    snr = dataset.labels["SNR"].to_numpy()[result.test_index] if "SNR" in dataset.labels \
        else None
    save_figure(one_to_one_figure(result.reference, result.fit.labels, labels, color=snr),
                out / "one_to_one.png")
    save_figure(pull_figure(result.pulls, labels), out / "pulls.png")
    print(f"train/test halves (random_state={args.seed}): {len(result.train_index)} / "
          f"{len(result.test_index)} stars; accuracy on the test half:")
    print(result.accuracy.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    y = dataset.label_array(labels)
    if args.folds > 1:
        folds = kfold_validate(CannonRegressor(label_names=labels), X, y, labels,
                               n_splits=args.folds, random_state=args.seed)
        folds.to_csv(out / "kfold.csv", index=False)
        print(f"\n{args.folds}-fold cross-validation (robust scatter per fold):")
        print(folds[["fold", *[f"robust_scatter_{n}" for n in labels]]].to_string(
            index=False, float_format=lambda v: f"{v:.4g}"))
    if args.grid:
        search = grid_search(CannonRegressor(label_names=labels), X, y,
                             {"regularization": [0.0, 10.0, 100.0]}, labels)
        import pandas as pd

        pd.DataFrame(search.cv_results_).drop(columns="params").to_csv(
            out / "grid_search.csv", index=False)
        print(f"\ngrid search: best {search.best_params_}")
    print(f"\noutputs in {out}/")
    return 0


def cmd_outliers(args: argparse.Namespace) -> int:
    from pathlib import Path

    from skcannon.dataset import SpectralDataset
    from skcannon.model import Cannon
    from skcannon.plotting import model_vs_data_figure, save_figure
    from skcannon.validation import find_outliers

    model = Cannon.load(args.model)
    dataset = SpectralDataset.load(args.dataset)
    names = list(model.label_names)
    fit = model.infer_labels(dataset.X)
    reference = dataset.label_array(names)
    info = dataset.labels.copy()
    info["FLAGS"] = dataset.flags
    table = find_outliers(reference, fit, names, k=args.k, info=info)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "outliers.csv", index=False)
    for row in table.head(args.max_plots).itertuples():
        n = row.index
        figure = model_vs_data_figure(
            dataset.wavelength, dataset.flux[n], dataset.ivar[n],
            model.predict(fit.labels[n : n + 1])[0], window=tuple(args.window),
            title=f"{row.APOGEE_ID}: {row.EXPLANATION}", model_label="model at fitted labels")
        save_figure(figure, out / f"outlier_{row.APOGEE_ID}.png")
    print(f"{len(table)} of {len(dataset)} stars off by more than {args.k:g} x the robust "
          f"scatter in some label:")
    if len(table):
        print(table[["APOGEE_ID", "REDUCED_CHI2", "EXPLANATION"]].to_string(index=False))
    print(f"table and data-vs-model plots in {out}/")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from skcannon.apogee.catalog import QualityCuts
    from skcannon.apogee.reader import read_apstar
    from skcannon.dataset import SpectralDataset
    from skcannon.model import Cannon
    from skcannon.report import Section, write_report
    from skcannon.science import ScienceInputs, science_sections, write_pdf
    from skcannon.validation import split_validate

    out = Path(args.output)
    model = Cannon.load(args.model)
    training = SpectralDataset.load(args.dataset)
    names = list(model.label_names)
    validation = split_validate(training.X, training.labels, names, random_state=args.seed,
                                wavelength=training.wavelength)
    real = SpectralDataset.load(args.real) if args.real else None
    real_fit = model.infer_labels(real.X) if real is not None else None
    raw = [read_apstar(p) for p in args.apstar or []]
    shared = Path(args.shared)
    sections, _ = science_sections(ScienceInputs(
        model=model, training=training, validation=validation, real=real, real_fit=real_fit,
        raw_spectra=raw, cuts=QualityCuts(),
        continuum=shared / "apogee" / "continuum" / "cannon_cont_pixels_apogee.npz",
        windows=shared / "apogee" / "aspcap_windows" / "aspcap_l31c_masks.npy",
        isochrones=Path(args.isochrones) if args.isochrones else
        shared / "isochrones" / "mist_v1.2",
        normalization_star=args.normalization_star, model_star=args.model_star,
        training_note=f"Model {args.model} (training: "
                      f"{model.provenance_.get('training', 'see the model file')})."), out)
    accuracy = Section("Cross-validation", f"Split of {args.dataset} into halves "
                       f"(random_state={args.seed}); a model trained on one half, the other "
                       "fitted.", tables=[(validation.accuracy, "Test half"),
                                          (validation.by_snr, "By SNR")])
    summary = pd_summary(model, training, validation)
    path = write_report(out, "skcannon report", [accuracy, *sections], summary)
    write_pdf(out / "report.pdf", [accuracy, *sections], summary)
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


def cmd_posterior(args: argparse.Namespace) -> int:
    from pathlib import Path

    from skcannon.apogee.reader import read_apstar
    from skcannon.dataset import SpectralDataset
    from skcannon.inference.mcmc import (
        CannonPosterior,
        posterior_comparison,
        posterior_corner_figure,
    )
    from skcannon.model import Cannon
    from skcannon.plotting import save_figure
    from skcannon.prepare import default_preprocessor
    from skcannon.spectra import stack_spectra

    model = Cannon.load(args.model)
    names = list(model.label_names)
    path = Path(args.spectrum)
    reference_sigma = None
    if path.suffix.lower() in (".h5", ".hdf5"):
        dataset = SpectralDataset.load(path)
        X = dataset.X[args.row : args.row + 1]
        star = dataset.ids[args.row]
        errors = [f"{n}_ERR" for n in names]
        if all(e in dataset.labels for e in errors):
            reference_sigma = dataset.labels.iloc[args.row][errors].to_numpy(float)
    else:  # an apStar file, preprocessed exactly like the training data
        spectrum = read_apstar(path)
        raw = stack_spectra(spectrum.flux, spectrum.ivar, spectrum.pixmask)
        X = default_preprocessor(args.continuum).fit_transform(raw)
        star = spectrum.apogee_id
    fit = model.infer_labels(X)
    sampler = CannonPosterior(model, prior=args.prior, likelihood=args.likelihood)
    print(f"priors: {sampler.priors}")
    posterior = sampler.sample(X[0, 0], X[0, 1], draws=args.draws, tune=args.tune,
                               chains=args.chains, seed=args.seed, initial=fit.labels[0])
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    posterior.summary.to_csv(out / "posterior_summary.csv")
    posterior.idata.to_netcdf(str(out / "chains.nc"))
    save_figure(posterior_corner_figure(posterior, names, fit.labels[0]),
                out / "posterior_corner.png")
    cv = None
    if args.cv_accuracy:
        import pandas as pd

        accuracy = pd.read_csv(args.cv_accuracy).set_index("label")
        cv = accuracy.reindex(names)["scatter"].to_numpy()
    comparison = posterior_comparison(names, posterior, fit.uncertainties[0], cv,
                                      reference_sigma)
    comparison.to_csv(out / "uncertainty_comparison.csv", index=False)
    print(f"\n{star}: posterior summary ({args.chains} chains x {args.draws} draws, "
          f"{posterior.divergences} divergences)")
    print(posterior.summary.to_string(float_format=lambda v: f"{v:.4g}"))
    for warning in posterior.warnings:
        print(f"WARNING: {warning}")
    print("\nuncertainties compared")
    print(comparison.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"\nchains, summary, corner plot and comparison in {out}/")
    return 0


def _nn_inputs(args):
    """Dataset, label names, the Cannon's split (halves, ``--seed``) and the arrays, for the nn
    commands; None (with a message) when torch or skorch is missing."""
    try:
        import skcannon.nn  # noqa: F401
    except ImportError as exc:
        print(f"skcannon nn: needs torch and skorch (pip install \"skcannon[nn]\"): {exc}",
              file=sys.stderr)
        return None
    import numpy as np
    from sklearn.model_selection import train_test_split

    from skcannon.dataset import SpectralDataset

    dataset = SpectralDataset.load(args.dataset)
    names = args.labels or default_label_columns(dataset.labels.columns)
    train, test = train_test_split(np.arange(len(dataset)), test_size=0.5,
                                   random_state=args.seed)
    return dataset, names, train, test, dataset.X, dataset.label_array(names)


def cmd_nn_train(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    inputs = _nn_inputs(args)
    if inputs is None:
        return 2
    from skcannon import nn as snn
    from skcannon.nn_compare import loss_figure, method_table
    from skcannon.plotting import save_figure

    dataset, names, train, test, X, y = inputs
    out = Path(args.output)
    histories, tables = {}, []
    for kind in args.kind:
        start = time.perf_counter()
        model = snn.fit_nn(kind, X[train], y[train], X[test], y[test], seed=args.seed,
                           max_epochs=args.max_epochs)
        seconds = time.perf_counter() - start
        snn.save_nn(model, out, kind, names, {"seed": args.seed, "max_epochs": args.max_epochs,
                                              "train_seconds": round(seconds, 1)})
        histories[kind] = snn.loss_history(model)
        predicted = model.predict(X[test])
        table = pd_frame(predicted, names, dataset.ids[test])
        table.to_csv(out / f"{kind}_validation_predictions.csv", index=False)
        tables.append(method_table(y[test], predicted, names, f"NN ({kind})"))
        print(f"{kind}: {len(histories[kind][0])} epochs in {seconds:.0f} s")
    save_figure(loss_figure(histories), out / "loss_curves.png")
    import pandas as pd

    summary = pd.concat(tables, ignore_index=True)
    summary.to_csv(out / "nn_accuracy.csv", index=False)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"weights, headers, loss curves and predictions in {out}/")
    return 0


def pd_frame(values, names, ids):
    """Predictions as a table with APOGEE_ID."""
    import pandas as pd

    table = pd.DataFrame(values, columns=list(names))
    table.insert(0, "APOGEE_ID", list(ids))
    return table


def cmd_nn_compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd

    inputs = _nn_inputs(args)
    if inputs is None:
        return 2
    from skcannon.model import Cannon
    from skcannon.nn import LoadedNN
    from skcannon.nn_compare import comparison_figure, method_table, training_size_study
    from skcannon.plotting import save_figure

    dataset, names, train, test, X, y = inputs
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    cannon = Cannon(label_names=tuple(names)).fit(y[train], X[train])
    rows = [method_table(y[test], cannon.infer_labels(X[test]).labels, names, "Cannon")]
    for kind in args.kind:
        net = LoadedNN(args.nn_dir, kind)
        if list(net.label_names) != list(names):
            raise SystemExit(f"the network in {args.nn_dir} predicts {net.label_names}, "
                             f"not {names}")
        rows.append(method_table(y[test], net.predict(X[test]), names, f"NN ({kind})"))
    table = pd.concat(rows, ignore_index=True)
    table.to_csv(out / "comparison.csv", index=False)
    save_figure(comparison_figure(table), out / "comparison.png")
    print(f"same split (random_state={args.seed}): {len(train)} training / {len(test)} test "
          "stars")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    fractions = [f for f in args.fractions if 0 < f <= 1]
    if fractions:
        sizes = training_size_study(X[train], y[train], X[test], y[test], names, fractions,
                                    args.kind[0], args.seed, {"max_epochs": args.max_epochs})
        sizes.to_csv(out / "training_size.csv", index=False)
        save_figure(comparison_figure(sizes), out / "training_size.png")
        print("\nby training-set size (robust scatter):")
        print(sizes.pivot_table(index=["n_train", "method"], columns="label",
                                values="robust_scatter").to_string(
                                    float_format=lambda v: f"{v:.4g}"))
    print(f"tables and figures in {out}/")
    return 0


DEFAULT_CONTINUUM = "../shared/apogee/continuum/cannon_cont_pixels_apogee.npz"


def cmd_prepare(args: argparse.Namespace) -> int:
    from skcannon.apogee.catalog import read_selection
    from skcannon.prepare import default_preprocessor, prepare_dataset

    selection = read_selection(args.selection)
    preprocessor = default_preprocessor(args.continuum, basis=args.basis, order=args.order)
    dataset, problems = prepare_dataset(selection, args.continuum, directory=args.data_dir,
                                        preprocessor=preprocessor)
    dataset.save(args.output, overwrite=args.overwrite)
    flagged = int((dataset.flags != 0).sum())
    print(f"{len(dataset)} stars x {dataset.flux.shape[1]} pixels written to {args.output} "
          f"({flagged} with flagged chips, {len(problems)} skipped)")
    for problem in problems:
        print(f"  skipped {problem['apogee_id']}: {problem['problem']}")
    return 0


def cmd_plot_normalization(args: argparse.Namespace) -> int:
    from pathlib import Path

    from skcannon.apogee.archive import data_dir
    from skcannon.apogee.reader import read_apstar
    from skcannon.plotting import normalization_figure, save_figure
    from skcannon.prepare import default_preprocessor

    path = Path(args.star)
    if not path.is_file():  # an APOGEE_ID: look for its file in the data directory
        matches = sorted(data_dir(args.data_dir).rglob(f"apStar-*{args.star}.fits"))
        if not matches:
            print(f"skcannon plot-normalization: error: {args.star} is neither a file nor a star "
                  f"with an apStar file under {data_dir(args.data_dir)}", file=sys.stderr)
            return 2
        path = matches[0]
    spectrum = read_apstar(path)
    from skcannon.spectra import stack_spectra

    preprocessor = default_preprocessor(args.continuum, basis=args.basis, order=args.order)
    preprocessor.fit(stack_spectra(spectrum.flux, spectrum.ivar, spectrum.pixmask))
    saved = save_figure(normalization_figure(spectrum, preprocessor), args.output)
    print(f"normalization diagnostic of {spectrum.apogee_id} written to {saved}")
    return 0


def _add_continuum_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--continuum", default=DEFAULT_CONTINUUM,
                        help="continuum pixel file (.npz with pixels_cannon or trusted, or .npy) "
                             "(default: %(default)s)")
    parser.add_argument("--basis", choices=["chebyshev", "sincos"], default="chebyshev",
                        help="continuum basis (default chebyshev)")
    parser.add_argument("--order", type=int, default=3,
                        help="polynomial degree or number of harmonics (default 3)")


def cmd_run(args: argparse.Namespace) -> int:
    from skcannon.job import run_main_job

    result = run_main_job(
        shared=args.shared, catalog=args.catalog, archive=args.archive_url,
        directory=args.data_dir, fields=None if args.all_fields else args.fields,
        cuts=_cuts(args), output=args.output, mirror_root=args.mirror, n_workers=args.workers,
        progress=not args.no_progress, seed=args.seed, n_simulated=args.n_simulated,
    )
    print("\nData summary")
    print(result.data.summary.to_string(index=False))
    print("\nLabels of the real spectra")
    columns = ["APOGEE_ID"] + [c for c in result.star_labels.columns
                               if c.endswith("_ERR") or c in result.accuracy.label.tolist()]
    print(result.star_labels[columns + ["REDUCED_CHI2"]].to_string(
        index=False, float_format=lambda v: f"{v:.4g}"))
    print("\nSummary")
    width = max(len(stage) for stage in result.summary.stage)
    for row in result.summary.itertuples():
        print(f"  {row.stage:<{width}}  {row.result}")
    print(f"\nreport: {result.report}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skcannon", description="The Cannon for APOGEE spectra, scikit-learn style.")
    parser.add_argument("--version", action="version", version=f"skcannon {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="the main job: select ... report",
                         description="The main job: select -> download -> normalize -> split "
                                     "-> train -> cross-validate -> fit -> report; prints a "
                                     "summary table and the path of the report.")
    run.add_argument("--catalog", default=None,
                     help="allStar catalog: path, URL, or 'skyserver' (default: the allStar file "
                          "at the archive; with --mirror and no catalog there, an index of the "
                          "mirror's apStar files)")
    run.add_argument("--mirror", default=None, metavar="DIR",
                     help="serve this directory (laid out like ../shared/apogee) on 127.0.0.1 "
                          "and use it as the archive (offline runs)")
    run.add_argument("--output", "-o", default="skcannon-output", help="output directory")
    run.add_argument("--shared", default="../shared",
                     help="directory with the continuum pixels, the reference model and the "
                          "DR12 label table (default: %(default)s)")
    run.add_argument("--seed", type=int, default=42,
                     help="random_state of the train/test split and the simulation")
    run.add_argument("--n-simulated", type=int, default=1880,
                     help="training spectra to simulate when too few labelled real stars are "
                          "selected (default 1880)")
    _add_archive_options(run)
    _add_cut_options(run)
    run.set_defaults(func=cmd_run)

    select = sub.add_parser("select", help="select giants from the allStar catalog",
                            description="Apply field and quality cuts to an allStar catalog, "
                                        "print how many stars each cut removes, write the "
                                        "selection.")
    select.add_argument("catalog", help="allStar FITS/CSV/parquet path or URL, or 'skyserver'")
    select.add_argument("--output", "-o", default="selection.csv",
                        help="output file: .csv, .fits or .parquet (default %(default)s)")
    select.add_argument("--data-dir", default=None, help="where a catalog URL is cached")
    _add_cut_options(select)
    select.set_defaults(func=cmd_select)

    download = sub.add_parser("download", help="download the apStar files of a selection",
                              description="Download apStar files (cached, parallel, retried); "
                                          "failures are listed and written to "
                                          "download_failures.json in the data directory.")
    download.add_argument("selection", help="selection file written by 'skcannon select'")
    _add_archive_options(download)
    download.set_defaults(func=cmd_download)

    read = sub.add_parser("read", help="read apStar files and print what they hold",
                          description="Read apStar files; print id, field, SNR, bad pixels.")
    read.add_argument("files", nargs="+", help="apStar FITS files")
    read.set_defaults(func=cmd_read)

    prepare = sub.add_parser("prepare", help="normalize downloaded spectra into a dataset file",
                             description="Read the selection's apStar files from the data "
                                         "directory, mask, regrid, normalize, and write one "
                                         "HDF5 training-set file.")
    prepare.add_argument("selection", help="selection file written by 'skcannon select'")
    prepare.add_argument("--output", "-o", default="dataset.h5", help="output HDF5 file")
    prepare.add_argument("--data-dir", default=None, help="where the apStar files are")
    prepare.add_argument("--overwrite", action="store_true", help="replace an existing file")
    _add_continuum_options(prepare)
    prepare.set_defaults(func=cmd_prepare)

    plot_norm = sub.add_parser("plot-normalization", help="normalization diagnostic of a star",
                               description="Raw spectrum with continuum pixels, fitted "
                                           "pseudo-continuum, normalized spectrum.")
    plot_norm.add_argument("star", help="apStar file, or an APOGEE_ID found in --data-dir")
    plot_norm.add_argument("--output", "-o", default="normalization.png",
                           help="figure file (.png or .pdf)")
    plot_norm.add_argument("--data-dir", default=None, help="where to look for the star")
    _add_continuum_options(plot_norm)
    plot_norm.set_defaults(func=cmd_plot_normalization)

    train = sub.add_parser("train", help="train a Cannon model on a dataset file",
                           description="Learn theta and s^2 per pixel from a dataset written by "
                                       "'skcannon prepare' or 'skcannon simulate'; write the "
                                       "model file (HDF5) and a summary.")
    train.add_argument("dataset", help="dataset HDF5 file")
    train.add_argument("--output", "-o", default="model.h5", help="model file to write")
    train.add_argument("--labels", nargs="+", default=None,
                       help="label columns (default: those of TEFF LOGG FE_H MG_FE SI_FE "
                            "ALPHA_M M_H present)")
    train.add_argument("--order", type=int, default=2, help="polynomial order (default 2)")
    train.add_argument("--regularization", type=float, default=0.0,
                       help="L1 strength (default 0: the classic Cannon)")
    train.add_argument("--overwrite", action="store_true", help="replace an existing file")
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
    simulate.add_argument("--labels", default="../shared/apogee/labels/apogee_dr12_labels.csv",
                          help="real label table (default: %(default)s)")
    simulate.add_argument("--n", type=int, default=1000, help="number of spectra")
    simulate.add_argument("--snr", type=float, nargs="+", default=[50.0, 250.0],
                          help="SNR, or a range MIN MAX drawn uniformly (default 50 250)")
    simulate.add_argument("--apstar", nargs="*", default=None,
                          help="real apStar files whose error shapes and masks are used")
    simulate.add_argument("--seed", type=int, default=0, help="random seed")
    simulate.add_argument("--output", "-o", default="simulated.h5", help="dataset to write")
    simulate.add_argument("--overwrite", action="store_true", help="replace an existing file")
    simulate.set_defaults(func=cmd_simulate)

    fit = sub.add_parser("fit", help="infer labels of a dataset's spectra with a model",
                         description="Batched multi-start label fitting (or scipy TRF star by "
                                     "star); writes labels, uncertainties, covariances, chi2 "
                                     "and flags per star.")
    fit.add_argument("dataset", help="dataset HDF5 file (normalized spectra)")
    fit.add_argument("--model", required=True, help="model file")
    fit.add_argument("--output", "-o", default="labels.csv", help=".csv, .fits or .parquet")
    fit.add_argument("--method", choices=["lm", "trf"], default="lm", help="fitting path")
    fit.add_argument("--starts", type=int, default=4,
                     help="starts per star besides the linearized guess (default 4)")
    fit.add_argument("--seed", type=int, default=0, help="seed of the spread starts")
    fit.set_defaults(func=cmd_fit)

    validate = sub.add_parser("validate", help="cross-validate the Cannon on a dataset",
                              description="Train on one half (train_test_split, --seed), fit "
                                          "the other, report bias/scatter per label and by "
                                          "SNR, pulls and one-to-one plots; k-fold "
                                          "cross_validate and an optional GridSearchCV.")
    validate.add_argument("dataset", help="dataset HDF5 file")
    validate.add_argument("--labels", nargs="+", default=None, help="label columns")
    validate.add_argument("--seed", type=int, default=42, help="random_state of the split")
    validate.add_argument("--folds", type=int, default=5, help="k of KFold (<2: skip)")
    validate.add_argument("--grid", action="store_true",
                          help="also GridSearchCV over the regularization")
    validate.add_argument("--output", "-o", default="validation", help="output directory")
    validate.set_defaults(func=cmd_validate)

    outliers = sub.add_parser("outliers", help="list and explain badly fitted stars",
                              description="Fit a dataset with a model, list stars off by more "
                                          "than k x the robust scatter with what could explain "
                                          "them, and plot data vs model for each.")
    outliers.add_argument("dataset", help="dataset HDF5 file with reference labels")
    outliers.add_argument("--model", required=True, help="model file")
    outliers.add_argument("--k", type=float, default=3.0, help="threshold in robust scatters")
    outliers.add_argument("--window", type=float, nargs=2, default=[16000, 16100],
                          help="wavelength window of the plots (Angstrom)")
    outliers.add_argument("--max-plots", type=int, default=20, help="at most this many plots")
    outliers.add_argument("--output", "-o", default="outliers", help="output directory")
    outliers.set_defaults(func=cmd_outliers)

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
    report.add_argument("--shared", default="../shared", help="shared data directory")
    report.add_argument("--seed", type=int, default=42, help="random_state of the CV split")
    report.add_argument("--output", "-o", default="report", help="output directory")
    report.set_defaults(func=cmd_report)

    posterior = sub.add_parser("posterior", help="full posterior of one spectrum with PyMC",
                               description="NUTS sampling of a spectrum's labels under the "
                                           "Cannon model (PyMC); prints the priors, a summary "
                                           "with R-hat/ESS/divergences and the comparison of "
                                           "uncertainties; saves the chains (netCDF) and a "
                                           "corner plot.")
    posterior.add_argument("spectrum", help="an apStar file, or a dataset file with --row")
    posterior.add_argument("--model", required=True, help="model file")
    posterior.add_argument("--row", type=int, default=0, help="row of a dataset file")
    posterior.add_argument("--prior", choices=["uniform", "normal"], default="uniform",
                           help="uniform over the training range +-10%% (default) or normals")
    posterior.add_argument("--likelihood", choices=["pixels", "quadratic"], default="pixels",
                           help="pixel-by-pixel Normal (default) or its exact quadratic form")
    posterior.add_argument("--draws", type=int, default=1000)
    posterior.add_argument("--tune", type=int, default=1000)
    posterior.add_argument("--chains", type=int, default=4)
    posterior.add_argument("--seed", type=int, default=0)
    posterior.add_argument("--cv-accuracy", default=None,
                           help="accuracy.csv from 'skcannon validate' (CV scatter column)")
    posterior.add_argument("--continuum", default=DEFAULT_CONTINUUM,
                           help="continuum pixels for an apStar input (default: %(default)s)")
    posterior.add_argument("--output", "-o", default="posterior", help="output directory")
    posterior.set_defaults(func=cmd_posterior)

    nn_parser = sub.add_parser("nn", help="neural-network regressor: train, compare",
                               description="A PyTorch network (skorch) predicting labels from "
                                           "spectra, on the Cannon's split (needs the 'nn' "
                                           "extra).")
    nn_sub = nn_parser.add_subparsers(dest="nn_command", required=True, metavar="COMMAND")
    for name, helptext, func in (
            ("train", "train networks on the train half, early stopping on the other",
             cmd_nn_train),
            ("compare", "NN vs Cannon on the same split, and vs training-set size",
             cmd_nn_compare)):
        p = nn_sub.add_parser(name, help=helptext, description=helptext)
        p.add_argument("dataset", help="labelled dataset (HDF5)")
        p.add_argument("--labels", nargs="+", default=None, help="label columns")
        p.add_argument("--kind", nargs="+", choices=["mlp", "cnn"], default=["mlp", "cnn"],
                       help="architectures (default: both)")
        p.add_argument("--seed", type=int, default=42,
                       help="random_state of the split (as 'skcannon validate') and torch")
        p.add_argument("--max-epochs", type=int, default=150, help="epochs at most")
        p.add_argument("--output", "-o", default=f"nn_{name}", help="output directory")
        if name == "compare":
            p.add_argument("--nn-dir", required=True, help="directory of 'skcannon nn train'")
            p.add_argument("--fractions", type=float, nargs="*", default=[0.25, 0.5, 1.0],
                           help="training-set fractions to compare (default 0.25 0.5 1)")
        p.set_defaults(func=func)

    serve = sub.add_parser("serve-mirror", help="serve a local directory as the archive",
                           description="Serve a directory laid out like ../shared/apogee over "
                                       "HTTP on 127.0.0.1 under archive paths.")
    serve.add_argument("directory")
    serve.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    serve.set_defaults(func=cmd_serve_mirror)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skcannon`` command. Library errors print one line and exit 2."""
    from skcannon.errors import SkcannonError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (SkcannonError, FileExistsError, FileNotFoundError) as exc:
        print(f"skcannon {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
