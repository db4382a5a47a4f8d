"""skcannon simulate and skcannon train, end to end on files."""

from __future__ import annotations

import pytest

from skcannon.cli import main
from skcannon.data.dataset import SpectralDataset
from skcannon.model import Cannon
from tests.conftest import LABELS_CSV, REFERENCE_DIR


def test_simulate_then_train(apstar_files, tmp_path, capsys):
    if not (REFERENCE_DIR.is_dir() and LABELS_CSV.is_file()):
        pytest.skip("reference model or label table absent")
    data = tmp_path / "sim.h5"
    assert main(["simulate", "--reference", str(REFERENCE_DIR), "--labels", str(LABELS_CSV),
                 "--n", "150", "--seed", "3", "--apstar", *map(str, apstar_files),
                 "-o", str(data)]) == 0
    dataset = SpectralDataset.load(data)
    assert len(dataset) == 150 and dataset.flux.shape[1] == 7214
    assert dataset.provenance["simulated_from"] == str(REFERENCE_DIR)
    model_path = tmp_path / "model.h5"
    capsys.readouterr()
    assert main(["train", str(data), "--labels", "TEFF", "LOGG", "FE_H", "ALPHA_M",
                 "-o", str(model_path)]) == 0
    captured = capsys.readouterr()
    for text in ("stars              150", "parameters", "median s^2", "training chi2/dof"):
        assert text in captured.out
    assert "training" in captured.err and "7214/7214" in captured.err   # progress over pixels
    assert main(["train", str(data), "-o", str(model_path), "--overwrite",
                 "--no-progress"]) == 0
    assert "7214/7214" not in capsys.readouterr().err
    model = Cannon.load(model_path)
    assert model.label_names == ("TEFF", "LOGG", "FE_H", "ALPHA_M")
    assert main(["train", str(data), "-o", str(model_path)]) == 2  # exists: clear refusal
    capsys.readouterr()
    # an option out of range: refused where it is parsed, one line, no model
    with pytest.raises(SystemExit) as info:
        main(["train", str(data), "-o", str(tmp_path / "bad.h5"), "--regularization", "-5"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --regularization: -5 is out of range" in err and "Traceback" not in err
    assert not (tmp_path / "bad.h5").exists()
