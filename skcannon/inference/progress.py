"""One shared way to show long work: a periodic line on stderr (NN epochs with their losses,
batches of fits or posteriors), so a step that takes more than a few seconds is never silent.
Bars over items use ``tqdm`` on stderr; steps with figures of their own (losses) use
:func:`progress_line`."""

from __future__ import annotations

import sys
from typing import TextIO


def progress_line(what: str, done: int, total: int | None = None, *,
                  stream: TextIO | None = None, **figures: float) -> str:
    """Write and return one progress line, e.g. ``"nn train: epoch 12/150, train_loss
    0.1234, valid_loss 0.1456"``.

    Parameters
    ----------
    what : str
        The step and its unit, e.g. ``"nn train: epoch"``.
    done : int
        Units finished.
    total : int, optional
        Units at most (shown as ``done/total``).
    stream : text stream, optional
        Default: ``sys.stderr``.
    **figures : float
        Shown as ``name value`` (4 significant digits).

    Returns
    -------
    str
        The line written (without its newline).
    """
    count = f"{done}/{total}" if total is not None else f"{done}"
    parts = [f"{what} {count}"] + [f"{name} {value:.4g}" for name, value in figures.items()]
    line = ", ".join(parts)
    stream = sys.stderr if stream is None else stream
    print(line, file=stream, flush=True)
    return line
