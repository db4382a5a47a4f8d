"""Every gallery script in examples/ runs without error against ../shared."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SHARED

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("plot_*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, tmp_path):
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env={"MPLBACKEND": "Agg", "PATH": "/usr/bin",
                                                       "HOME": str(tmp_path),
                                                       "SKCANNON_SHARED": str(SHARED),
                                                       "PYTHONPATH": str(EXAMPLES[0].parents[1])})
    assert done.returncode == 0, done.stderr[-3000:]
    first = script.read_text().split('"""')[1].strip().splitlines()
    assert first and first[1].startswith("==="), "gallery scripts start with a titled docstring"
