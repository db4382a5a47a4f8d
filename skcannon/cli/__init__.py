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
        return _run(args)
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


def _run(args: argparse.Namespace) -> int:
    """The command under the package's thread policy
    (:func:`skcannon.inference.threads.command_threads`: BLAS and OpenMP threads sized from the
    usable CPUs), with progress lines of long loops on stderr unless ``--no-progress``
    (:func:`skcannon.inference.progress.show_progress`), owning its output directory where it
    writes one (one run at a time)."""
    import contextlib

    from skcannon.inference.progress import show_progress
    from skcannon.inference.threads import command_threads

    with contextlib.ExitStack() as stack:
        stack.enter_context(command_threads())
        stack.enter_context(show_progress(enabled=not getattr(args, "no_progress", False)))
        if getattr(args, "owns_output", False):     # an output directory: one run at a time
            from skcannon.integrity import output_lock

            stack.enter_context(output_lock(args.output))
        return args.func(args)
