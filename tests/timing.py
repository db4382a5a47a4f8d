"""Wall-clock limits that follow the machine's load: a limit measured on an idle machine is
scaled by how much slower a fixed reference workload runs now (:func:`slowness`), so a test
that checks "refused before the work" or "stops within seconds" passes on a busy machine too
and still fails when the work is really done."""

from __future__ import annotations

import functools
import time

import numpy as np

#: Seconds the reference workload takes on an idle 2-core development machine (0.009 s measured
#: on Dec 3, 2026, best of 3 runs x 3 processes).
IDLE_REFERENCE_S = 0.01


def _reference_seconds() -> float:
    """Best of 3 timings of the reference workload: numpy products and a Python loop (what
    the command-line checks spend their time on)."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 200))
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(20):
            a = np.tanh(a @ a.T / 200)
        sum(i * i for i in range(100_000))
        best = min(best, time.perf_counter() - start)
    return best


@functools.lru_cache(maxsize=1)
def slowness() -> float:
    """How many times slower than idle the machine runs now (at least 1); measured once per
    test session."""
    return max(_reference_seconds() / IDLE_REFERENCE_S, 1.0)


def limit(idle_seconds: float) -> float:
    """``idle_seconds`` (a limit that holds on an idle machine) scaled by :func:`slowness`."""
    return idle_seconds * slowness()
