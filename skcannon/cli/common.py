"""Options and helpers shared by several commands."""

from __future__ import annotations

import argparse

from skcannon.apogee.constants import ARCHIVE_URL_ENV, DATA_DIR_ENV, DEFAULT_FIELDS
from skcannon.pipeline.resources import DEFAULT_SHARED, SharedData


def add_cut_options(parser: argparse.ArgumentParser) -> None:
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


def cuts_from_args(args: argparse.Namespace):
    from skcannon.apogee.catalog import QualityCuts

    return QualityCuts(
        require_labels=not args.allow_missing_labels, min_snr=args.min_snr,
        max_logg=args.max_logg, max_teff=args.max_teff, min_feh=args.min_feh,
        duplicates="keep" if args.keep_duplicates else "highest_snr",
    )


def add_archive_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--archive-url", default=None,
                        help=f"archive base URL (default: ${ARCHIVE_URL_ENV} or the SDSS SAS)")
    parser.add_argument("--data-dir", default=None,
                        help=f"data/cache directory (default: ${DATA_DIR_ENV} or "
                             "~/.cache/skcannon)")
    parser.add_argument("--workers", type=int, default=4, help="parallel downloads (default 4)")
    parser.add_argument("--retries", type=int, default=3,
                        help="retries per file after a failure (default 3)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")



#: Default continuum-pixel file: the shared one, relative to a checkout's root.
DEFAULT_CONTINUUM = str(SharedData().continuum)


def add_continuum_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--continuum", default=DEFAULT_CONTINUUM,
                        help="continuum pixel file (.npz with pixels_cannon or trusted, or .npy) "
                             "(default: %(default)s)")
    parser.add_argument("--basis", choices=["chebyshev", "sincos"], default="chebyshev",
                        help="continuum basis (default chebyshev)")
    parser.add_argument("--order", type=int, default=3,
                        help="polynomial degree or number of harmonics (default 3)")


def add_shared_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--shared DIR``: the shared data directory (see :mod:`skcannon.pipeline.resources`)."""
    parser.add_argument("--shared", default=str(DEFAULT_SHARED),
                        help=f"shared data directory with {what} (default: %(default)s)")
