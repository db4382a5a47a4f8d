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
