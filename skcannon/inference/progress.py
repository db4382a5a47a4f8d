"""One shared way to show long work: a periodic line on stderr (NN epochs with their losses,
batches of fits or posteriors), so a step that takes more than a few seconds is never silent.
Bars over items use ``tqdm`` on stderr; steps with figures of their own (losses) use
:func:`progress_line`.

Library calls stay quiet unless asked: a long loop that reports only on request (the "trf"
label fits of many stars) writes its lines to the stream given to it, or, without one, to the
stream of an enclosing :func:`show_progress` block (the command line opens one), and to
nothing otherwise::

    with show_progress():                       # lines on sys.stderr
        model.infer_labels(X, method="trf")
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Iterator
from typing import TextIO

#: A loop over many units (stars) reports about this many lines in all (plus its last unit).
PROGRESS_LINES = 20

#: Whether progress is asked for in this context, and where it goes (None: ``sys.stderr``).
_ASKED: contextvars.ContextVar[tuple[bool, TextIO | None]] = contextvars.ContextVar(
    "skcannon_progress", default=(False, None))


def progress_line(what: str, done: int, total: int | None = None, *,
                  stream: TextIO | None = None, doing: str = "", **figures: float) -> str:
    """Write and return one progress line, e.g. ``"nn train: epoch 12/150, train_loss
    0.1234, valid_loss 0.1456"``.

    Parameters
    ----------
    what : str
        The step and its unit, e.g. ``"nn train: epoch"``.
    done : int
        Units finished (or, for a list of steps, the step begun).
    total : int, optional
        Units at most (shown as ``done/total``).
    stream : text stream, optional
        Default: ``sys.stderr``.
    doing : str, default=""
        What the step does, shown after the count (``"step 2/5: training the Cannon"``).
    **figures : float
        Shown as ``name value`` (4 significant digits).

    Returns
    -------
    str
        The line written (without its newline).
    """
    count = f"{done}/{total}" if total is not None else f"{done}"
    head = f"{what} {count}" + (f": {doing}" if doing else "")
    parts = [head] + [f"{name} {value:.4g}" for name, value in figures.items()]
    line = ", ".join(parts)
    stream = sys.stderr if stream is None else stream
    print(line, file=stream, flush=True)
    return line


@contextlib.contextmanager
def show_progress(stream: TextIO | None = None, *, enabled: bool = True) -> Iterator[None]:
    """Ask for progress lines from the long loops run inside the block.

    Parameters
    ----------
    stream : text stream, optional
        Where the lines go (default: ``sys.stderr`` as it is at each line).
    enabled : bool, default=True
        False: the block is quiet (e.g. ``--no-progress``), whatever an outer block asked.

    Yields
    ------
    None
    """
    token = _ASKED.set((bool(enabled), stream))
    try:
        yield
    finally:
        _ASKED.reset(token)


def progress_stream(stream: TextIO | None = None) -> TextIO | None:
    """Where a loop that reports only on request writes its lines.

    Parameters
    ----------
    stream : text stream, optional
        The stream the caller gave explicitly (returned as it is).

    Returns
    -------
    text stream or None
        ``stream``; without one, the stream of the enclosing :func:`show_progress` block
        (``sys.stderr`` unless it named another); None (stay quiet) outside such a block.
    """
    if stream is not None:
        return stream
    asked, where = _ASKED.get()
    if not asked:
        return None
    return sys.stderr if where is None else where


def report_every(total: int, lines: int = PROGRESS_LINES) -> int:
    """Units between two progress lines, so that ``total`` units give about ``lines`` lines.

    Parameters
    ----------
    total : int
        Units in the loop (e.g. stars).
    lines : int, default=PROGRESS_LINES
        Lines wanted in all.

    Returns
    -------
    int
        At least 1.
    """
    return max(-(-int(total) // max(int(lines), 1)), 1)
