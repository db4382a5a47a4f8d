"""Visible long work: TRF fits of many stars report every batch of stars when asked (a stream,
a show_progress block, the command line), never otherwise, and the results do not change."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from skcannon.inference.progress import (
    PROGRESS_LINES,
    progress_line,
    progress_stream,
    report_every,
    show_progress,
)
from skcannon.inference.reference import fit_labels_trf
from skcannon.model import Cannon
from skcannon.spectra import FLUX, IVAR

NAMES = ("TEFF", "LOGG", "PARAM_M_H")


@pytest.fixture(scope="module")
def trained(real_set):
    """A Cannon trained on 200 real giants (100 pixels) and 45 other real giants to fit."""
    X, y = real_set.X, real_set.table[list(NAMES)].to_numpy(float)
    return Cannon(NAMES).fit(y[:200], X[:200]), X[200:245]


def test_lines_name_the_step_and_what_it_does():
    stream = io.StringIO()
    line = progress_line("nn compare: step", 2, 5, stream=stream, doing="training the Cannon")
    assert line == "nn compare: step 2/5: training the Cannon"
    assert stream.getvalue() == line + "\n"
    assert report_every(45) == 3 and report_every(5) == 1 and report_every(0) == 1
    assert report_every(10 * PROGRESS_LINES) == 10


def test_progress_is_asked_for_by_a_stream_or_a_block_and_otherwise_quiet():
    explicit = io.StringIO()
    assert progress_stream() is None and progress_stream(explicit) is explicit
    with show_progress():
        import sys

        assert progress_stream() is sys.stderr
        with show_progress(enabled=False):
            assert progress_stream() is None
        with show_progress(explicit):
            assert progress_stream() is explicit
    assert progress_stream() is None


def test_trf_fits_report_each_batch_of_stars_only_when_asked(trained, capsys):
    model, X = trained
    quiet = model.infer_labels(X, method="trf")
    assert capsys.readouterr().err == ""                   # a library call stays quiet
    with show_progress():
        shown = model.infer_labels(X, method="trf")
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"fit (trf): star {n}/45" for n in range(3, 46, 3)]   # every 3 of 45
    np.testing.assert_array_equal(shown.labels, quiet.labels)
    np.testing.assert_array_equal(shown.chi2, quiet.chi2)
    stream = io.StringIO()
    labels, chi2 = fit_labels_trf(model.state_, X[:7, FLUX], X[:7, IVAR], progress=stream)
    assert stream.getvalue().splitlines() == [f"fit (trf): star {n}/7" for n in range(1, 8)]
    assert capsys.readouterr().err == ""
    np.testing.assert_array_equal(labels, quiet.labels[:7])
    np.testing.assert_array_equal(chi2, quiet.chi2[:7])


def test_fit_command_shows_trf_progress_unless_told_not_to(tmp_path, capsys, real_model_file):
    from skcannon.cli import main

    real, model = real_model_file
    capsys.readouterr()
    assert main(["fit", str(real), "--model", str(model), "--method", "trf",
                 "-o", str(tmp_path / "shown.csv")]) == 0
    lines = capsys.readouterr().err.splitlines()
    every = report_every(336)
    assert lines == [f"fit (trf): star {n}/336" for n in [*range(every, 337, every), 336]]
    assert main(["fit", str(real), "--model", str(model), "--method", "trf", "--no-progress",
                 "-o", str(tmp_path / "quiet.csv")]) == 0
    assert capsys.readouterr().err == ""
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "shown.csv"),
                                  pd.read_csv(tmp_path / "quiet.csv"))
