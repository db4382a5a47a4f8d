"""The ``skcannon`` command: a thin layer over the library (imports happen inside commands).

One module per group of commands: :mod:`.data`, :mod:`.modelling`, :mod:`.reporting`,
:mod:`.neural`; shared options in :mod:`.common`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from skcannon._version import __version__
from skcannon.cli import data, modelling, neural, reporting, survey


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skcannon", description="The Cannon for APOGEE spectra, scikit-learn style.")
    parser.add_argument("--version", action="version", version=f"skcannon {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for group in (data, modelling, reporting, neural, survey):
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skcannon`` command. Library errors and bad input print one line
    ``skcannon <command>: error: <file/option>: <problem>`` and exit 2; Ctrl-C prints one line
    and exits 130."""
    from sklearn.utils._param_validation import InvalidParameterError

    from skcannon.errors import SkcannonError

    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "owns_output", False):     # an output directory: one run at a time
            from skcannon.integrity import output_lock

            with output_lock(args.output):
                return args.func(args)
        return args.func(args)
    except (SkcannonError, FileExistsError, FileNotFoundError, InvalidParameterError) as exc:
        print(f"skcannon {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:       # a read-only directory, a full disk, a port in use ...
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"skcannon {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"skcannon {args.command}: interrupted (finished files are kept; partial "
              "downloads resume on the next run)", file=sys.stderr)
        return 130
