"""The Sphinx documentation builds, gallery included (every example executed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SHARED

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_docs_build_with_gallery(tmp_path):
    pytest.importorskip("sphinx_gallery")
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present")
    # build a copy, so the examples' output files stay out of the repository
    root = tmp_path / "repo"
    for part in ("docs", "examples"):
        shutil.copytree(REPO / part, root / part)
    (tmp_path / "shared").symlink_to(SHARED.resolve())
    # the examples are executed by tests/test_examples.py; here the gallery is only built
    # -W: a warning (a broken reference, bad reST in a docstring) fails the build
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-b", "html", "-q",
                           "-D", "sphinx_gallery_conf.plot_gallery=0", "docs",
                           "docs/_build/html"], cwd=root, capture_output=True, text=True,
                          timeout=900, env={"MPLBACKEND": "Agg", "PATH": "/usr/bin",
                                            "HOME": str(tmp_path),
                                            "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]
    # nothing generated is left in the source tree: it is all in the build directory
    left = sorted(str(p.relative_to(root / "docs")) for p in (root / "docs").rglob("*")
                  if "_build" not in p.parts)
    assert left == sorted(str(p.relative_to(REPO / "docs")) for p in (REPO / "docs").rglob("*")
                          if "_build" not in p.parts and "auto_examples" not in p.parts
                          and "__pycache__" not in p.parts), left
    html = root / "docs" / "_build" / "html"
    gallery = (html / "auto_examples" / "index.html").read_text()
    api = (html / "api.html").read_text()           # API pages made by autodoc
    for documented in ("skcannon.model.cannon.Cannon", "skcannon.pipeline.config.JobConfig",
                       "skcannon.integrity.atomic_write", "skcannon.labels.label_axis_name",
                       "skcannon.survey.run.label_survey", "skcannon.data.products.read_product"):
        assert f'id="{documented}"' in api, documented
    assert "Package layout" in (html / "layout.html").read_text()
    assert "make_slurm_cluster" in (html / "survey.html").read_text()   # the recipe shown
    for example in sorted((REPO / "examples").glob("plot_*.py")):
        assert example.stem in gallery
        assert (html / "auto_examples" / f"{example.stem}.html").is_file()
