"""Data commands: run (the main job), select, download, read, prepare,
plot-normalization, serve-mirror."""

from __future__ import annotations

import argparse
import sys

from skcannon.cli.common import (
    NON_NEGATIVE_INT,
    PORT,
    POSITIVE_INT,
    add_archive_options,
    add_continuum_options,
    add_cut_options,
    add_shared_option,
    cuts_from_args,
)

#: Help text of the catalog argument of ``run`` and ``select``.
CATALOG_HELP = ("catalog: 'allstarlite' (default: the archive's allStarLite file, every needed "
                "column, far smaller than allStar), 'allstar' (the full ~4 GB file), "
                "'skyserver' (SQL for the requested fields only; ASPCAP 'synspec' labels, the "
                "files hold 'synspec_rev1'), or a FITS/CSV/parquet path or URL")


def cmd_select(args: argparse.Namespace) -> int:
    from skcannon.apogee.catalog import (
        format_cut_table,
        load_catalog_source,
        select_giants,
        write_selection,
    )

    fields = None if args.all_fields else args.fields
    catalog = load_catalog_source(args.catalog, archive=args.archive_url, fields=fields,
                                  data_dir=args.data_dir, skyserver_url=args.skyserver_url)
    print(f"catalog: {catalog.attrs['catalog_source']} (ASPCAP version "
          f"{catalog.attrs['catalog_version']})")
    selection = select_giants(catalog, fields=fields, cuts=cuts_from_args(args))
    print(format_cut_table(selection.attrs["cut_table"]))
    if len(selection.attrs["catalog_versions"]) > 1:
        print("warning: the selection mixes catalog versions "
              f"{', '.join(selection.attrs['catalog_versions'])}", file=sys.stderr)
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
        telescope = s.telescope or "unknown (no TELESCOP card; not in the archive layout)"
        print(f"{s.apogee_id}  field={s.field}  telescope={telescope}  SNR={s.snr:.1f}  "
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



def cmd_prepare(args: argparse.Namespace) -> int:
    from skcannon.apogee.catalog import read_selection
    from skcannon.data.build import default_preprocessor, prepare_dataset

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
    from skcannon.data.build import default_preprocessor, normalize_apstar_files
    from skcannon.plotting import save_figure, star_normalization_figure

    path = Path(args.star)
    if not path.is_file():  # an APOGEE_ID: look for its file in the data directory
        matches = sorted(data_dir(args.data_dir).rglob(f"apStar-*{args.star}.fits"))
        if not matches:
            print(f"skcannon plot-normalization: error: {args.star} is neither a file nor a star "
                  f"with an apStar file under {data_dir(args.data_dir)}", file=sys.stderr)
            return 2
        path = matches[0]
    (spectrum,), view = normalize_apstar_files([path], default_preprocessor(
        args.continuum, basis=args.basis, order=args.order))
    saved = save_figure(star_normalization_figure(spectrum, view), args.output)
    print(f"normalization diagnostic of {spectrum.apogee_id} written to {saved}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from skcannon.pipeline.job import JobConfig, run_main_job

    result = run_main_job(JobConfig(
        shared=args.shared, catalog=args.catalog, skyserver_url=args.skyserver_url,
        archive=args.archive_url,
        data_dir=args.data_dir, fields=None if args.all_fields else args.fields,
        cuts=cuts_from_args(args), output=args.output, mirror=args.mirror,
        n_workers=args.workers, progress=not args.no_progress, seed=args.seed,
        n_simulated=args.n_simulated))
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


def _register_run(sub) -> None:
    run = sub.add_parser("run", help="the main job: select ... report",
                         description="The main job: select -> download -> normalize -> split "
                                     "-> train -> cross-validate -> fit -> report; prints a "
                                     "summary table and the path of the report.")
    run.add_argument("--catalog", default=None, metavar="{allstarlite,allstar,skyserver,PATH}",
                     help=CATALOG_HELP + "; with --mirror and no catalog there, an index of the "
                          "mirror's apStar files")
    run.add_argument("--skyserver-url", default=None,
                     help="SkyServer base URL for --catalog skyserver (default: astroquery's)")
    run.add_argument("--mirror", default=None, metavar="DIR",
                     help="serve this directory (laid out like ../shared/apogee) on 127.0.0.1 "
                          "and use it as the archive (offline runs)")
    run.add_argument("--output", "-o", default="skcannon-output", help="output directory")
    add_shared_option(run, "the continuum pixels, the reference model and the DR12 label "
                           "table")
    run.add_argument("--seed", type=NON_NEGATIVE_INT, default=42,
                     help="random_state of the train/test split and the simulation")
    run.add_argument("--n-simulated", type=POSITIVE_INT, default=1880,
                     help="training spectra to simulate when too few labelled real stars are "
                          "selected (default 1880)")
    add_archive_options(run)
    add_cut_options(run)
    run.set_defaults(func=cmd_run)


def _register_catalog_and_download(sub) -> None:
    select = sub.add_parser("select", help="select giants from the allStar catalog",
                            description="Apply field and quality cuts to an allStar catalog, "
                                        "print how many stars each cut removes, write the "
                                        "selection.")
    select.add_argument("catalog", nargs="?", default=None,
                        metavar="{allstarlite,allstar,skyserver,PATH}", help=CATALOG_HELP)
    select.add_argument("--output", "-o", default="selection.csv",
                        help="output file: .csv, .fits or .parquet (default %(default)s)")
    select.add_argument("--data-dir", default=None, help="where a catalog URL is cached")
    select.add_argument("--archive-url", default=None,
                        help="archive base URL for allstarlite/allstar (default: "
                             "$SKCANNON_ARCHIVE_URL or the SDSS SAS)")
    select.add_argument("--skyserver-url", default=None,
                        help="SkyServer base URL for 'skyserver' (default: astroquery's)")
    add_cut_options(select)
    select.set_defaults(func=cmd_select)

    download = sub.add_parser("download", help="download the apStar files of a selection",
                              description="Download apStar files (cached, parallel, retried); "
                                          "failures are listed and written to "
                                          "download_failures.json in the data directory.")
    download.add_argument("selection", help="selection file written by 'skcannon select'")
    add_archive_options(download)
    download.set_defaults(func=cmd_download)

    read = sub.add_parser("read", help="read apStar files and print what they hold",
                          description="Read apStar files; print id, field, SNR, bad pixels.")
    read.add_argument("files", nargs="+", help="apStar FITS files")
    read.set_defaults(func=cmd_read)


def _register_spectra(sub) -> None:
    prepare = sub.add_parser("prepare", help="normalize downloaded spectra into a dataset file",
                             description="Read the selection's apStar files from the data "
                                         "directory, mask, regrid, normalize, and write one "
                                         "HDF5 training-set file.")
    prepare.add_argument("selection", help="selection file written by 'skcannon select'")
    prepare.add_argument("--output", "-o", default="dataset.h5", help="output HDF5 file")
    prepare.add_argument("--data-dir", default=None, help="where the apStar files are")
    prepare.add_argument("--overwrite", action="store_true", help="replace an existing file")
    add_continuum_options(prepare)
    prepare.set_defaults(func=cmd_prepare)

    plot_norm = sub.add_parser("plot-normalization", help="normalization diagnostic of a star",
                               description="Raw spectrum with continuum pixels, fitted "
                                           "pseudo-continuum, normalized spectrum.")
    plot_norm.add_argument("star", help="apStar file, or an APOGEE_ID found in --data-dir")
    plot_norm.add_argument("--output", "-o", default="normalization.png",
                           help="figure file (.png or .pdf)")
    plot_norm.add_argument("--data-dir", default=None, help="where to look for the star")
    add_continuum_options(plot_norm)
    plot_norm.set_defaults(func=cmd_plot_normalization)

    serve = sub.add_parser("serve-mirror", help="serve a local directory as the archive",
                           description="Serve a directory laid out like ../shared/apogee over "
                                       "HTTP on 127.0.0.1 under archive paths.")
    serve.add_argument("directory")
    serve.add_argument("--port", type=PORT, default=0, help="port (default: a free one)")
    serve.set_defaults(func=cmd_serve_mirror)


def register(sub) -> None:
    """Add this module's commands to the ``skcannon`` subparsers."""
    _register_run(sub)
    _register_catalog_and_download(sub)
    _register_spectra(sub)
