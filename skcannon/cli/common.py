"""Options and helpers shared by several commands."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

from skcannon.apogee.constants import ARCHIVE_URL_ENV, DATA_DIR_ENV, DEFAULT_FIELDS
from skcannon.pipeline.resources import DEFAULT_SHARED, SharedData


def _number(kind: type, *, low: float | None = None, high: float | None = None,
            low_open: bool = False):
    """An argparse ``type`` for a finite number in a range; argparse then prints
    ``error: argument --x: <why>`` and exits 2 (options are checked where they are parsed:
    NaN and infinities are refused, since every comparison with NaN is false and a cut at
    NaN or inf silently keeps or drops everything)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number")
        if (low is not None and (value <= low if low_open else value < low)) \
                or (high is not None and value > high):
            bound = (f"> {low:g}" if low_open else f">= {low:g}") if low is not None else ""
            bound += (" and " if bound and high is not None else "") + \
                (f"<= {high:g}" if high is not None else "")
            raise argparse.ArgumentTypeError(f"{text} is out of range (must be {bound})")
        return value
    parse.__name__ = kind.__name__          # argparse names the type in its messages
    return parse


#: Option types: counts, positive numbers, seeds, fractions and any finite number.
NON_NEGATIVE_INT = _number(int, low=0)
POSITIVE_INT = _number(int, low=1)
POSITIVE_FLOAT = _number(float, low=0, low_open=True)
NON_NEGATIVE_FLOAT = _number(float, low=0)
FINITE_FLOAT = _number(float)
FRACTION = _number(float, low=0, low_open=True, high=1)
PORT = _number(int, low=0, high=65535)


def check_range(option: str, values: Sequence[float], *, allow_single: bool = True) -> None:
    """Refuse an option that takes ``MIN MAX`` (or one value, with ``allow_single``) given
    more values, or a decreasing range: ``SkcannonError("--opt: ...")`` before any work.

    Parameters
    ----------
    option : str
        The option's name, e.g. ``"--snr"``.
    values : sequence of float
        The values given.
    allow_single : bool, default=True
        Whether one value (a constant) is allowed.
    """
    from skcannon.errors import SkcannonError

    given = " ".join(f"{v:g}" for v in values)
    if len(values) > 2 or (len(values) == 1 and not allow_single):
        raise SkcannonError(f"{option}: {given}: give {'one value or ' * allow_single}a range "
                            f"MIN MAX ({len(values)} values given)")
    if len(values) == 2 and values[0] > values[1]:
        raise SkcannonError(f"{option}: {given} is not an increasing range (give the lower "
                            "value first)")


def add_cut_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("quality cuts")
    group.add_argument("--fields", nargs="+", default=list(DEFAULT_FIELDS), metavar="FIELD",
                       help="FIELD values to select (default: %(default)s)")
    group.add_argument("--all-fields", action="store_true", help="do not select by field")
    group.add_argument("--min-snr", type=NON_NEGATIVE_FLOAT, default=50.0,
                       help="minimum SNR (default 50)")
    group.add_argument("--max-logg", type=FINITE_FLOAT, default=4.0,
                       help="drop dwarfs with LOGG above this (default 4)")
    group.add_argument("--max-teff", type=FINITE_FLOAT, default=5700.0,
                       help="drop stars with TEFF above this (default 5700)")
    group.add_argument("--min-feh", type=FINITE_FLOAT, default=-1.0,
                       help="drop stars with FE_H below this (default -1)")
    group.add_argument("--allow-missing-labels", action="store_true",
                       help="keep stars lacking a label (ASPCAP null -9999 or NaN)")
    group.add_argument("--dedupe", choices=("keep", "highest_snr", "extratarg"), default="keep",
                       help="entries of a star observed in several fields/telescopes: 'keep' "
                            "all and count them (default, as the course lab asks), "
                            "'highest_snr' keeps the best entry passing the other cuts, "
                            "'extratarg' drops DR17's EXTRATARG bit-4 entries (decided by DR17 "
                            "over the whole catalog, before any cut)")
    group.add_argument("--keep-duplicates", action="store_const", const="keep",
                       dest="dedupe", help="same as --dedupe keep (the default)")


def cuts_from_args(args: argparse.Namespace):
    from skcannon.apogee.catalog import QualityCuts

    return QualityCuts(
        require_labels=not args.allow_missing_labels, min_snr=args.min_snr,
        max_logg=args.max_logg, max_teff=args.max_teff, min_feh=args.min_feh,
        duplicates=args.dedupe,
    )


def add_archive_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--archive-url", default=None,
                        help=f"archive base URL (default: ${ARCHIVE_URL_ENV} or the SDSS SAS)")
    parser.add_argument("--data-dir", default=None,
                        help=f"data/cache directory (default: ${DATA_DIR_ENV} or "
                             "~/.cache/skcannon)")
    parser.add_argument("--workers", type=POSITIVE_INT, default=4,
                        help="parallel downloads (default 4)")
    parser.add_argument("--retries", type=NON_NEGATIVE_INT, default=3,
                        help="retries per file after a failure (default 3)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")



#: Default continuum-pixel file: the shared one, relative to a checkout's root.
DEFAULT_CONTINUUM = str(SharedData().continuum)


def add_continuum_options(parser: argparse.ArgumentParser) -> None:
    """``--continuum``, ``--basis`` (the registered continuum bases) and ``--order``."""
    from skcannon.preprocessing.bases import CONTINUUM_BASES

    parser.add_argument("--continuum", default=DEFAULT_CONTINUUM,
                        help="continuum pixel file (.npz with pixels_cannon or trusted, or .npy) "
                             "(default: %(default)s)")
    parser.add_argument("--basis", choices=sorted(CONTINUUM_BASES), default="chebyshev",
                        help="continuum basis (default chebyshev)")
    parser.add_argument("--order", type=POSITIVE_INT, default=3,
                        help="polynomial degree or number of harmonics (default 3)")


def add_shared_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--shared DIR``: the shared data directory (see :mod:`skcannon.pipeline.resources`)."""
    parser.add_argument("--shared", default=str(DEFAULT_SHARED),
                        help=f"shared data directory with {what} (default: %(default)s)")


def is_spectrum_fits(path: str) -> bool:
    """True for a FITS file name (a spectrum product; datasets are HDF5 or npz)."""
    return str(path).lower().endswith((".fits", ".fit", ".fits.gz"))


def continuum_for(model, continuum: str | None) -> str | None:
    """``--continuum`` as given; for a model that carries no preprocessing (not a Pipeline)
    and no ``--continuum``, the shared continuum pixels (said on the command line)."""
    from sklearn.pipeline import Pipeline

    if continuum is None and not isinstance(model, Pipeline):
        continuum = DEFAULT_CONTINUUM
        print(f"note: the model does not record its preprocessing; normalizing with the "
              f"standard steps and {continuum} (--continuum)")
    return continuum


def load_model(path: str):
    """The model in ``path`` as saved: a fitted Pipeline, Cannon or CannonRegressor
    (:func:`skcannon.load`; format-3 model files too)."""
    from skcannon.pipeline.model import load_model as load

    return load(path)


def load_cannon(path: str):
    """The fitted Cannon of the model in ``path`` (for commands on normalized spectra)."""
    from skcannon.pipeline.model import cannon_of

    return cannon_of(load_model(path))


def pipeline_for(model, continuum: str | None):
    """The fitted Pipeline applying ``model`` to spectrum files: its own, else the standard
    steps with :func:`continuum_for` (see :func:`skcannon.pipeline.model.model_pipeline`)."""
    from skcannon.pipeline.model import model_pipeline

    return model_pipeline(model, continuum_for(model, continuum))[0]


def labels_to_use(named: list[str] | None, columns, source: str) -> list[str]:
    """``--labels`` if given (each name once), else the known label columns present; a dataset
    with none is an error naming it (not an empty model)."""
    from skcannon.errors import SkcannonError
    from skcannon.labels import KNOWN_LABELS, present_labels

    twice = sorted({name for name in named or [] if named.count(name) > 1})
    if twice:
        raise SkcannonError(f"--labels: {', '.join(twice)} named more than once (each label "
                            "is one column of the model)")
    labels = named or present_labels(columns)
    if not labels:
        raise SkcannonError(f"{source}: no label columns (looked for {', '.join(KNOWN_LABELS)}; "
                            f"it has {', '.join(map(str, columns)) or 'none'}); name them with "
                            "--labels")
    return labels


def products_text() -> str:
    """The registered spectrum products, for help texts: "apStar, aspcapStar, ..."."""
    from skcannon.data.products import product_names

    return ", ".join(product_names())


def add_product_options(parser: argparse.ArgumentParser, product_help: str) -> None:
    """``--product`` and ``--continuum``: how spectrum files are read and prepared."""
    from skcannon.data.products import product_names

    parser.add_argument("--product", choices=product_names(), default=None, help=product_help)
    parser.add_argument("--continuum", default=None,
                        help="continuum pixels, only for a model that does not record its "
                             "preprocessing (then default: the shared continuum pixels)")
