"""The training-set file: prepare from real files, round trip, determinism, bad files."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pandas as pd
import pytest

from skcannon.apogee.archive import apstar_relpath
from skcannon.cli import main
from skcannon.data.build import prepare_dataset
from skcannon.data.dataset import SpectralDataset
from skcannon.errors import BadFileError


@pytest.fixture
def data_dir_with_files(apstar_files, tmp_path):
    """A data directory laid out like the archive holding the real files, and a selection
    (label values here are placeholders for the file-format test, not ASPCAP values)."""
    rows = []
    for f in apstar_files:
        star = f.stem.removeprefix("apStar-dr17-")
        dest = tmp_path / "data" / apstar_relpath("apo25m", f.parent.name, star)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dest)
        rows.append({"APOGEE_ID": star, "TELESCOPE": "apo25m", "FIELD": f.parent.name,
                     "TEFF": 4500.0, "LOGG": 2.0, "FE_H": 0.0, "MG_FE": 0.1, "SI_FE": 0.0,
                     "SNR": 100.0})
    rows.append({"APOGEE_ID": "2M-missing", "TELESCOPE": "apo25m", "FIELD": "M15",
                 "TEFF": 4500.0, "LOGG": 2.0, "FE_H": 0.0, "MG_FE": 0.1, "SI_FE": 0.0,
                 "SNR": 100.0})
    return tmp_path / "data", pd.DataFrame(rows)


def test_prepare_round_trip_and_determinism(data_dir_with_files, continuum_file, tmp_path):
    directory, selection = data_dir_with_files
    dataset, problems = prepare_dataset(selection, continuum_file, directory=directory)
    assert len(dataset) == len(selection) - 1
    assert problems[0]["apogee_id"] == "2M-missing" and "no such file" in problems[0]["problem"]
    assert dataset.flux.shape == (len(dataset), 7214)
    assert np.isfinite(dataset.flux).all()
    first = dataset.save(tmp_path / "a.h5")
    again, _ = prepare_dataset(selection, continuum_file, directory=directory)
    second = again.save(tmp_path / "b.h5")
    assert first.read_bytes() == second.read_bytes()
    back = SpectralDataset.load(first)
    for name in ("wavelength", "flux", "ivar", "pixmask", "flags"):
        np.testing.assert_array_equal(getattr(back, name), getattr(dataset, name))
    pd.testing.assert_frame_equal(back.labels, dataset.labels, check_dtype=False)
    assert back.provenance["inputs"][0]["sha256"] == dataset.provenance["inputs"][0]["sha256"]
    assert back.provenance["preprocessing"]["continuumnormalizer"]["order"] == 3
    assert back.X.shape == (len(dataset), 3, 7214)
    with pytest.raises(FileExistsError):
        dataset.save(first)


def test_foreign_and_damaged_files(tmp_path):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as h5:
        h5["x"] = 1
    with pytest.raises(BadFileError, match="foreign.h5: not a sealed skcannon dataset"):
        SpectralDataset.load(foreign)
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 50)
    with pytest.raises(BadFileError, match="broken.h5"):
        SpectralDataset.load(broken)


def test_cli_prepare_and_plot(data_dir_with_files, continuum_file, apstar_files, tmp_path,
                              capsys):
    from matplotlib.image import imread

    directory, selection = data_dir_with_files
    selection.to_csv(tmp_path / "sel.csv", index=False)
    assert main(["prepare", str(tmp_path / "sel.csv"), "--data-dir", str(directory),
                 "--continuum", str(continuum_file), "-o", str(tmp_path / "d.h5")]) == 0
    assert "skipped 2M-missing" in capsys.readouterr().out
    star = apstar_files[0].stem.removeprefix("apStar-dr17-")
    out = tmp_path / "norm.png"
    assert main(["plot-normalization", star, "--data-dir", str(directory),
                 "--continuum", str(continuum_file), "-o", str(out)]) == 0
    image = imread(out)
    assert image.shape[0] == int(2.4 * 3 * 150) and image.shape[1] == 10 * 150
    assert image[..., :3].std() > 0.05  # not blank
    assert main(["plot-normalization", "2M-nobody", "--data-dir", str(directory),
                 "--continuum", str(continuum_file)]) == 2


def test_arrays_with_a_label_of_the_wrong_shape_or_integer_flux_are_refused(tmp_path):
    """A label array of the wrong length or 2-D is named, never dropped silently; integer
    (truncated) flux is named, never trained on."""
    from skcannon.data.arrays import load_labelled_arrays, open_dataset

    rng = np.random.default_rng(0)
    good = {"flux": 1 - 0.1 * rng.random((6, 8)), "flux_err": np.full((6, 8), 0.01),
            "TEFF": rng.uniform(4000, 5000, 6), "LOGG": rng.uniform(1, 3, 6)}
    np.savez(tmp_path / "good.npz", **good)
    assert list(open_dataset(tmp_path / "good.npz").labels.columns[-2:]) == ["TEFF", "LOGG"]
    for name, change, message in (
            ("short", {"TEFF": good["TEFF"][:5]}, r"array 'TEFF' has shape \(5,\)"),
            ("twod", {"TEFF": good["TEFF"][:, None]}, r"array 'TEFF' has shape \(6, 1\)"),
            ("integer", {"flux": np.round(good["flux"]).astype(np.int64)},
             "the flux is stored as int64")):
        path = tmp_path / f"{name}.npz"
        np.savez(path, **{**good, **change})
        with pytest.raises(BadFileError, match=f"{name}.npz: {message}"):
            load_labelled_arrays(path)
        with pytest.raises(BadFileError, match=message):
            open_dataset(path)
    np.savez(tmp_path / "one.npz", spectrum=good["flux"][0], spec_err=good["flux_err"][0],
             TEFF=np.float64(4500.0))                   # one star: a scalar label is its value
    assert load_labelled_arrays(tmp_path / "one.npz").table.TEFF.tolist() == [4500.0]
