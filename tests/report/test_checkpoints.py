"""The lab's checkpoint PDFs: exactly the figures the lab lists, captions as selectable text."""

from __future__ import annotations

import numpy as np
import pytest

from skcannon.apogee.constants import MODEL_STAR, NORMALIZATION_STAR
from skcannon.cli import main
from skcannon.data.dataset import SpectralDataset
from skcannon.report import Section
from skcannon.report.checkpoints import CHECKPOINTS, checkpoint_figure, checkpoint_filename
from tests.conftest import SHARED
from tests.report import pdfcheck


def test_file_names_and_registry():
    assert checkpoint_filename(2) == "lab2_cp2.pdf"
    assert checkpoint_filename(3, "Ada  King Lovelace") == "lab2_cp3_Ada_King_Lovelace.pdf"
    assert {n: [b.__name__ for b in CHECKPOINTS[n]] for n in (1, 2, 3)} == {
        1: ["labels_corner", "normalization"], 2: ["model_vs_data", "cross_validation"],
        3: ["kiel", "mystery_posterior"]}

    @checkpoint_figure(4)
    def extra(inputs, directory):
        return Section("extra")

    try:
        assert CHECKPOINTS[4] == [extra]
    finally:
        del CHECKPOINTS[4]


@pytest.mark.slow
def test_checkpoint_command_writes_the_named_pdfs(simulated_set, reference_model, tmp_path):
    labels, X, snr = simulated_set
    keep = slice(0, 150)
    SpectralDataset(reference_model.wavelength_, X[keep, 0], X[keep, 1],
                    X[keep, 2].astype(np.int64), labels[keep].assign(SNR=snr[keep]),
                    np.zeros(150, dtype=np.int64)).save(tmp_path / "d.h5")
    assert main(["train", str(tmp_path / "d.h5"), "-o", str(tmp_path / "m.h5")]) == 0
    out = tmp_path / "cp"
    for number in (1, 2):
        assert main(["checkpoint", str(number), str(tmp_path / "d.h5"), "--model",
                     str(tmp_path / "m.h5"), "--shared", str(SHARED), "--name", "Ada Lovelace",
                     "-o", str(out)]) == 0
        pdf = out / f"lab2_cp{number}_Ada_Lovelace.pdf"
        assert pdfcheck.problems(pdf) == []
        text = " ".join(pdfcheck.text(pdf).split())
        assert f"Lab 2, checkpoint {number}" in text and "Ada Lovelace" in text
        assert text.count("Data source:") == 2          # one caption per figure, both sourced
    cp1 = " ".join(pdfcheck.text(out / "lab2_cp1_Ada_Lovelace.pdf").split())
    assert "Label corner plot" in cp1 and "150 training stars" in cp1
    # the lab's stars are not in these data: each stand-in is named, with why
    assert f"Stand-in: the lab's star {NORMALIZATION_STAR} is not among" in cp1
    cp2 = " ".join(pdfcheck.text(out / "lab2_cp2_Ada_Lovelace.pdf").split())
    assert f"Stand-in: the lab's star {MODEL_STAR} is not in this training set" in cp2
    assert "16000-16100 Angstrom" in cp2 and "Cross-validation plot" in cp2
