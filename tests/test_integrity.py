"""Whole-file integrity: a byte flipped anywhere in a model or dataset file either changes
nothing that loads or raises BadFileError - never altered content, never another exception."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skcannon.data.dataset import SpectralDataset
from skcannon.errors import BadFileError
from skcannon.model import Cannon
from skcannon.spectra import stack_spectra

#: Positions tried in the normal run (spread over the file); the slow test tries every byte.
SAMPLED_POSITIONS = 250


@pytest.fixture(scope="module")
def small_files(tmp_path_factory):
    """A small trained model file and a small dataset file (real-looking labels, 40 pixels)."""
    rng = np.random.default_rng(0)
    n, p = 40, 24
    labels = pd.DataFrame({"APOGEE_ID": [f"2M{i:08d}+0000000" for i in range(n)],
                           "TEFF": rng.uniform(4000, 5200, n), "LOGG": rng.uniform(1, 3.5, n)})
    flux = 1 - 0.1 * rng.random((1, p)) * (labels.TEFF.to_numpy()[:, None] / 5000)
    flux += rng.normal(0, 0.01, (n, p))
    X = stack_spectra(flux, np.full((n, p), 1e4))
    directory = tmp_path_factory.mktemp("files")
    model = Cannon(("TEFF", "LOGG"), order=1, n_error_factors=0).fit(labels, X)
    model_path = model.save(directory / "model.h5")
    dataset = SpectralDataset.from_spectra(np.linspace(15100, 16900, p), X, labels,
                                           provenance={"source": "test"})
    dataset_path = dataset.save(directory / "dataset.h5")
    return model_path, dataset_path


def _model_content(path):
    model = Cannon.load(path)
    state = model.state_
    return (model.get_params(), {k: v for k, v in vars(state).items()})


def _dataset_content(path):
    dataset = SpectralDataset.load(path)
    return ({name: getattr(dataset, name) for name in ("wavelength", "flux", "ivar", "pixmask",
                                                      "flags")},
            dataset.labels.to_dict("list"), dataset.provenance)


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
    if hasattr(a, "__dict__") and not isinstance(a, type):
        return type(a) is type(b) and _same(vars(a), vars(b))
    return a == b or (a != a and b != b)


def _sweep(path, load, positions, tmp_path):
    original = path.read_bytes()
    expected = load(path)
    outcomes = {"identical": 0, "refused": 0}
    flipped = tmp_path / path.name
    for position in positions:
        data = bytearray(original)
        data[position] ^= 0xFF
        flipped.write_bytes(bytes(data))
        try:
            content = load(flipped)
        except BadFileError:
            outcomes["refused"] += 1
            continue
        assert _same(content, expected), f"byte {position}: altered content loaded"
        outcomes["identical"] += 1
    return outcomes


def _positions(path, every: bool) -> np.ndarray:
    size = path.stat().st_size
    if every:
        return np.arange(size)
    return np.unique(np.r_[np.linspace(0, size - 1, SAMPLED_POSITIONS).astype(int),
                           np.random.default_rng(1).integers(0, size, SAMPLED_POSITIONS)])


@pytest.mark.parametrize("every", [False, pytest.param(True, marks=pytest.mark.slow)],
                         ids=["sampled", "every-position"])
@pytest.mark.parametrize("kind", ["model", "dataset"])
def test_byte_flips_never_load_altered_content(small_files, tmp_path, kind, every):
    path = small_files[0] if kind == "model" else small_files[1]
    load = _model_content if kind == "model" else _dataset_content
    outcomes = _sweep(path, load, _positions(path, every=every), tmp_path)
    assert outcomes["refused"] > 0          # (unused padding bytes load identical content)


def test_dataset_edits_are_caught(small_files, tmp_path):
    import h5py

    _, dataset_path = small_files
    for edit in (lambda h5: h5["labels/c1"].__setitem__(0, 2.6e-305),
                 lambda h5: h5.attrs.__setitem__("label_columns", '["APOGEE_ID", "LOGG", "TEFF"]'),
                 lambda h5: h5.attrs.__setitem__("provenance", "{}")):
        copy = tmp_path / "edited.h5"
        copy.write_bytes(dataset_path.read_bytes())
        with h5py.File(copy, "r+") as h5:
            edit(h5)
        with pytest.raises(BadFileError, match="edited.h5: checksum mismatch"):
            SpectralDataset.load(copy)


def test_csv_tables_with_a_repeated_column_are_refused(tmp_path):
    from skcannon.errors import BadFileError
    from skcannon.integrity import read_csv_table

    good = tmp_path / "good.csv"
    good.write_text("TEFF,LOGG\n4500,2.5\n")
    assert list(read_csv_table(good).columns) == ["TEFF", "LOGG"]
    bad = tmp_path / "bad.csv"
    bad.write_text("TEFF,LOGG, TEFF\n4500,2.5,5000\n")     # pandas alone would say TEFF, TEFF.1
    with pytest.raises(BadFileError, match=r"bad.csv: column TEFF appears more than once"):
        read_csv_table(bad)


def test_output_lock_is_removed_when_a_run_ends_normally(tmp_path):
    from skcannon.integrity import OUTPUT_LOCK, output_lock

    with output_lock(tmp_path / "out") as lock:
        assert lock == tmp_path / "out" / OUTPUT_LOCK and lock.is_file()
    assert not lock.exists()
    with pytest.raises(RuntimeError), output_lock(tmp_path / "out"):
        raise RuntimeError("a failed run")
    assert lock.is_file()                     # left (released) naming what ran
    with output_lock(tmp_path / "out"):       # and simply taken over
        pass
    assert not lock.exists()
