"""Report and posterior commands."""

from __future__ import annotations

import argparse

import numpy as np

from skcannon.cli.common import (
    DEFAULT_CONTINUUM,
)


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from skcannon.apogee.catalog import QualityCuts
    from skcannon.apogee.reader import read_apstar
    from skcannon.data.dataset import SpectralDataset
    from skcannon.evaluation.validation import split_validate
    from skcannon.model import Cannon
    from skcannon.report import ScienceInputs, science_sections, write_pdf
    from skcannon.report.html import Section, write_report

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
    from skcannon.data.build import default_preprocessor
    from skcannon.data.dataset import SpectralDataset
    from skcannon.inference.mcmc import (
        CannonPosterior,
        posterior_comparison,
        posterior_corner_figure,
    )
    from skcannon.model import Cannon
    from skcannon.plotting import save_figure
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
        raw = stack_spectra(spectrum.flux, spectrum.ivar, pixmask=spectrum.pixmask)
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


def register(sub) -> None:
    """Add this module's commands to the ``skcannon`` subparsers."""
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
