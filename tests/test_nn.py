"""The neural-network regressor: learns, round-trips, rejects bad input; torch stays optional."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("skorch")

from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from skcannon import nn as snn  # noqa: E402
from skcannon.cli import main  # noqa: E402
from skcannon.data.dataset import SpectralDataset  # noqa: E402


@pytest.fixture(scope="module")
def trained(simulated_set, reference_model):
    labels, X, _ = simulated_set
    names = list(reference_model.label_names)
    y = labels[names].to_numpy()
    train, test = train_test_split(np.arange(len(X)), test_size=0.5, random_state=42)
    model = snn.fit_nn("mlp", X[train], y[train], X[test], y[test], seed=3, max_epochs=40)
    return model, X, y, train, test, names


def test_network_beats_the_mean_by_a_wide_margin(trained):
    model, X, y, train, test, names = trained
    rmse = np.sqrt(np.mean((model.predict(X[test]) - y[test]) ** 2, axis=0))
    baseline = np.sqrt(np.mean((y[train].mean(axis=0) - y[test]) ** 2, axis=0))
    assert np.all(rmse < 0.5 * baseline), dict(zip(names, rmse / baseline, strict=True))
    train_loss, valid_loss = snn.loss_history(model)
    assert len(train_loss) == len(valid_loss) >= 5 and train_loss[-1] < train_loss[0]


def test_deterministic_with_a_seed(trained):
    model, X, y, train, test, _ = trained
    again = snn.fit_nn("mlp", X[train], y[train], X[test], y[test], seed=3, max_epochs=40)
    np.testing.assert_allclose(again.predict(X[test]), model.predict(X[test]), rtol=1e-5)


def test_save_load_gives_identical_predictions(trained, tmp_path):
    model, X, _, _, test, names = trained
    snn.save_nn(model, tmp_path, "mlp", names)
    loaded = snn.LoadedNN(tmp_path, "mlp")
    np.testing.assert_allclose(loaded.predict(X[test]), model.predict(X[test]), rtol=1e-5,
                               atol=1e-6)
    assert loaded.label_names == names


def test_wrong_spectrum_length_is_a_clear_error(trained, tmp_path):
    model, X, _, _, _, names = trained
    with pytest.raises(ValueError, match="8000 pixels per spectrum; this step expects 7214"):
        model.predict(np.ones((2, 3, 8000)))
    snn.save_nn(model, tmp_path, "mlp", names)
    with pytest.raises(ValueError, match="expects 7214"):
        snn.LoadedNN(tmp_path, "mlp").predict(np.ones((1, 3, 8000)))


def test_cnn_forward_and_estimator_contract(trained):
    _, X, _, _, _, _ = trained
    import torch

    net = snn.SpectrumCNN(X.shape[2], 4)
    out = net(torch.from_numpy(snn.SpectraToChannels().fit(X[:4]).transform(X[:4])))
    assert out.shape == (4, 4)
    regressor = snn.make_nn_regressor("cnn", X.shape[2], 4, max_epochs=1)
    assert clone(regressor).get_params()["regressor__net__max_epochs"] == 1


@pytest.mark.slow
def test_nn_train_and_compare_commands(simulated_set, reference_model, tmp_path, capsys):
    labels, X, snr = simulated_set
    SpectralDataset(reference_model.wavelength_, X[:, 0], X[:, 1], X[:, 2].astype(np.int64),
                    labels.assign(SNR=snr), np.zeros(len(X), dtype=np.int64)
                    ).save(tmp_path / "d.h5")
    assert main(["nn", "train", str(tmp_path / "d.h5"), "--kind", "mlp", "--max-epochs", "15",
                 "-o", str(tmp_path / "nn")]) == 0
    assert (tmp_path / "nn" / "loss_curves.png").stat().st_size > 5000
    capsys.readouterr()
    assert main(["nn", "compare", str(tmp_path / "d.h5"), "--nn-dir", str(tmp_path / "nn"),
                 "--kind", "mlp", "--max-epochs", "15", "--fractions", "0.5", "-o",
                 str(tmp_path / "cmp")]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "Cannon" in out and "NN (mlp)" in out and "by training-set size" in out
    steps = [line for line in captured.err.splitlines() if line.startswith("nn compare:")]
    assert steps == [
        "nn compare: step 1/4: training the Cannon on 300 stars, fitting 300 test stars",
        f"nn compare: step 2/4: NN (mlp) of {tmp_path / 'nn'} predicting 300 test stars",
        "nn compare: step 3/4: fraction 0.5 (150 training stars): training the Cannon, "
        "fitting 300 test stars",
        "nn compare: step 4/4: fraction 0.5 (150 training stars): training NN (mlp)"]
    assert "nn train: epoch 1/15" in captured.err        # the study's network shows its epochs


def test_everything_else_works_without_torch(tmp_path):
    """Block torch and skorch: the package, the model and the CLI still import and run."""
    code = ("import sys, importlib.abc\n"
            "class Block(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path, target=None):\n"
            "        if name.split('.')[0] in ('torch', 'skorch'):\n"
            "            raise ImportError(f'{name} is blocked')\n"
            "sys.meta_path.insert(0, Block())\n"
            "import skcannon, skcannon.model, skcannon.cli, skcannon.inference\n"
            "from skcannon.cli import main\n"
            "sys.exit(main(['nn', 'train', 'missing.h5']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 2
    assert "pip install" in done.stderr and "skcannon[nn]" in done.stderr


def test_every_network_file_is_checked_as_a_whole(trained, tmp_path):
    """Header, weights and input scaling: any change is a BadFileError naming the file."""
    from skcannon.errors import BadFileError

    model, _, _, _, _, names = trained
    for name, edit in (("mlp.json", lambda b: b.replace(b'"TEFF"', b'"LOGG"', 1)),
                       ("mlp_weights.pt", lambda b: b[:-9] + bytes([b[-9] ^ 1]) + b[-8:]),
                       ("mlp_input_scaling.npz", lambda b: b[:200] + bytes([b[200] ^ 1])
                        + b[201:])):
        directory = tmp_path / name
        snn.save_nn(model, directory, "mlp", names)
        path = directory / name
        path.write_bytes(edit(path.read_bytes()))
        with pytest.raises(BadFileError, match=name.replace(".", r"\.")):
            snn.LoadedNN(directory, "mlp")


def test_a_header_of_another_kind_or_other_files_is_refused(trained, tmp_path):
    """``mlp.json`` replaced by a (valid, sealed) cnn header and ``mlp_weights.pt`` altered:
    refused, not loaded; so is a header covering other files or holding nonsense scales."""
    import json

    from skcannon.errors import BadFileError
    from skcannon.integrity import content_digest, file_digest

    model, X, _, _, test, names = trained
    snn.save_nn(model, tmp_path, "mlp", names)
    header = json.loads((tmp_path / "mlp.json").read_text())

    def write_header(target: str, **changes) -> None:
        edited = {**header, **changes}
        edited["checksum"] = content_digest({k: v for k, v in edited.items()
                                             if k != "checksum"}, {})
        (tmp_path / target).write_text(json.dumps(edited))

    for stem in ("weights.pt", "input_scaling.npz"):       # a cnn set, its digests right
        (tmp_path / f"cnn_{stem}").write_bytes((tmp_path / f"mlp_{stem}").read_bytes())
    write_header("cnn.json", kind="cnn", files={f"cnn_{stem}": file_digest(
        tmp_path / f"cnn_{stem}") for stem in ("weights.pt", "input_scaling.npz")})
    (tmp_path / "mlp.json").write_bytes((tmp_path / "cnn.json").read_bytes())
    weights = tmp_path / "mlp_weights.pt"
    data = weights.read_bytes()
    weights.write_bytes(data[:-9] + bytes([data[-9] ^ 1]) + data[-8:])
    with pytest.raises(BadFileError, match=r"mlp\.json: is the header of a 'cnn' network"):
        snn.LoadedNN(tmp_path, "mlp")
    weights.write_bytes(data)
    write_header("mlp.json", files={"mlp_weights.pt": file_digest(weights)})
    with pytest.raises(BadFileError, match=r"mlp\.json: covers the files"):
        snn.LoadedNN(tmp_path, "mlp")
    write_header("mlp.json", label_scale=[0.0] * len(names))
    with pytest.raises(BadFileError, match="label_scale finite and > 0"):
        snn.LoadedNN(tmp_path, "mlp")
    write_header("mlp.json")                                  # the original loads again
    np.testing.assert_allclose(snn.LoadedNN(tmp_path, "mlp").predict(X[test[:3]]),
                               model.predict(X[test[:3]]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="kind 'cnn' is not the model's network"):
        snn.save_nn(model, tmp_path / "other", "cnn", names)


def test_training_shows_one_line_per_epoch_with_its_losses(simulated_set, reference_model,
                                                           capsys):
    labels, X, _ = simulated_set
    y = labels[list(reference_model.label_names)].to_numpy()
    snn.fit_nn("mlp", X[:40], y[:40], X[40:60], y[40:60], seed=0, max_epochs=3, progress=True)
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split(",")[0] for line in lines] == [f"nn train: epoch {e}/3" for e in (1, 2, 3)]
    assert all("train_loss" in line and "valid_loss" in line for line in lines)
    snn.fit_nn("mlp", X[:40], y[:40], X[40:60], y[40:60], seed=0, max_epochs=2)
    assert capsys.readouterr().err == ""              # quiet unless asked


def test_training_size_study_says_each_step_when_asked(simulated_set, reference_model,
                                                       capsys):
    """report: called before each training (with the network's epochs shown); the table is
    the one a quiet study gives."""
    from skcannon.nn.compare import training_size_study

    labels, X, _ = simulated_set
    names = list(reference_model.label_names)
    X, y = X[:100, :, :400], labels[names].to_numpy()[:100]
    steps = []
    shown = training_size_study(X[:60], y[:60], X[60:], y[60:], names, [0.5], "mlp", 1,
                                {"max_epochs": 2}, report=steps.append)
    assert steps == ["fraction 0.5 (30 training stars): training the Cannon, fitting 40 test "
                     "stars", "fraction 0.5 (30 training stars): training NN (mlp)"]
    assert capsys.readouterr().err.count("nn train: epoch 2/2") == 1
    quiet = training_size_study(X[:60], y[:60], X[60:], y[60:], names, [0.5], "mlp", 1,
                                {"max_epochs": 2})
    assert capsys.readouterr().err == ""
    pd.testing.assert_frame_equal(shown, quiet, rtol=1e-5)
