"""The ``skcannon`` command: a thin layer over the library (imports happen inside commands).

One module per group of commands: :mod:`.data`, :mod:`.modelling`, :mod:`.reporting`,
:mod:`.neural`; shared options in :mod:`.common`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from skcannon._version import __version__
from skcannon.cli import data, modelling, neural, reporting


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skcannon", description="The Cannon for APOGEE spectra, scikit-learn style.")
    parser.add_argument("--version", action="version", version=f"skcannon {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for group in (data, modelling, reporting, neural):
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skcannon`` command. Library errors print one line and exit 2."""
    from sklearn.utils._param_validation import InvalidParameterError

    from skcannon.errors import SkcannonError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (SkcannonError, FileExistsError, FileNotFoundError, InvalidParameterError) as exc:
        print(f"skcannon {args.command}: error: {exc}", file=sys.stderr)
        return 2
