"""Shared helpers: where the data are, and the flat results file."""

from __future__ import annotations

import datetime
import json
import platform
import resource
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
RESULTS = Path(__file__).resolve().parent / "results.json"


def machine() -> str:
    """A one-line description of this machine."""
    import os

    return f"{platform.machine()} {os.cpu_count()} cores, {platform.python_implementation()} " \
           f"{platform.python_version()}, numpy {np.__version__}"


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def record(figures: dict) -> dict:
    """Merge ``figures`` into benchmarks/results.json (one flat object) and return it."""
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results.update(figures)
    results["machine"] = machine()
    results["date"] = datetime.date.today().isoformat()
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return results


def _spin() -> None:
    """Busy-loop forever (one process of :func:`cpu_load`)."""
    while True:
        pass


class cpu_load:  # noqa: N801 - used as a context manager, like contextlib's
    """A CPU-bound load of one busy process per usable CPU, started on entry and stopped on
    exit (what "loaded" figures run beside: a shared node, a busy laptop)."""

    def __init__(self, processes: int | None = None) -> None:
        from skcannon.inference.threads import usable_cpus

        self.n = usable_cpus() if processes is None else processes
        self.processes = []

    def __enter__(self) -> cpu_load:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.processes = [context.Process(target=_spin, daemon=True) for _ in range(self.n)]
        for process in self.processes:
            process.start()
        return self

    def __exit__(self, *exc) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.join()


def options(estimator) -> str:
    """An estimator's parameters (the options a figure used), as one line."""
    return ", ".join(f"{k}={v!r}" for k, v in sorted(estimator.get_params().items()))
