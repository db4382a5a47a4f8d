"""A hostile new user's inputs: each gets `skcannon <command>: error: <file/option>: <problem>`
(exit 2), never a traceback or a plausible wrong result; runs own their output directories."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from skcannon.cli import main
from tests.conftest import shared_file
from tests.timing import limit


@pytest.fixture(scope="module")
def real_npz():
    return shared_file("apogee", "real_labelled", "real_giants_100px.npz")


@pytest.fixture(scope="module")
def real_model(real_npz, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.h5"
    assert main(["train", str(real_npz), "-o", str(path), "--no-progress"]) == 0
    return path


def one_error_line(capsys, *parts: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("argv, message", [
    (["download", "x.csv", "--retries", "-1"], "argument --retries: -1 is out of range"),
    (["download", "x.csv", "--workers", "0"], "argument --workers: 0 is out of range"),
    (["outliers", "x.h5", "--model", "m.h5", "--k", "-1"], "argument --k: -1 is out of range"),
    (["fit", "x.h5", "--model", "m.h5", "--starts", "two"], "argument --starts: 'two' is not"),
    (["serve-mirror", "--port", "70000"], "argument --port: 70000 is out of range"),
])
def test_options_are_checked_where_they_are_parsed(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_reversed_window_and_too_many_folds(real_npz, real_model, tmp_path, capsys):
    assert main(["outliers", str(real_npz), "--model", str(real_model), "--window", "16100",
                 "16000", "-o", str(tmp_path / "o")]) == 2
    one_error_line(capsys, "error: --window: 16100 16000 is not an increasing range")
    assert main(["validate", str(real_npz), "--folds", "400", "-o", str(tmp_path / "v")]) == 2
    one_error_line(capsys, "error: --folds: 400 folds of 336 stars")


def test_dataset_lacking_a_model_label(real_npz, tmp_path, capsys):
    arrays = dict(np.load(real_npz))
    del arrays["LOGG"]
    partial = tmp_path / "no_logg.npz"
    np.savez(partial, **arrays)
    model = tmp_path / "m.h5"
    assert main(["train", str(real_npz), "-o", str(model), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["outliers", str(partial), "--model", str(model), "-o", str(tmp_path / "o")]) == 2
    one_error_line(capsys, "dataset has no label column(s) LOGG")


def test_parquet_without_pyarrow_is_refused_before_the_work(real_npz, real_model, tmp_path,
                                                            capsys, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec     # pyarrow is installed here: hide it
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyarrow" else real_find_spec(name, *a))
    start = time.perf_counter()
    assert main(["fit", str(real_npz), "--model", str(real_model), "-o",
                 str(tmp_path / "x.parquet")]) == 2
    one_error_line(capsys, "x.parquet: writing parquet needs pyarrow")
    assert not (tmp_path / "x.parquet").exists()
    assert main(["fit", str(real_npz), "--model", str(real_model), "-o",
                 str(tmp_path / "x.xlsx")]) == 2
    one_error_line(capsys, "x.xlsx: unknown table format '.xlsx'")
    assert time.perf_counter() - start < limit(5)


def test_posterior_bad_row_and_all_masked_spectrum(real_npz, real_model, tmp_path, capsys):
    assert main(["posterior", str(real_npz), "--model", str(real_model), "--row", "999",
                 "-o", str(tmp_path / "p")]) == 2
    one_error_line(capsys, "--row: 999 is beyond the last row", "336 stars: rows 0-335")
    arrays = dict(np.load(real_npz))
    arrays["flux_err"][0] = 1.0               # every pixel of row 0 bad
    masked = tmp_path / "masked.npz"
    np.savez(masked, **arrays)
    assert main(["posterior", str(masked), "--model", str(real_model), "-o",
                 str(tmp_path / "p2")]) == 2
    one_error_line(capsys, "masked.npz: row 0 (star_0) has no usable pixel")
    assert main(["posterior", str(masked), "--model", str(real_model), "--rows", "3,0",
                 "-o", str(tmp_path / "p3")]) == 2              # the batch path checks too
    one_error_line(capsys, "masked.npz: row 0 (star_0) has no usable pixel")


def test_posterior_refuses_a_model_of_another_grid(real_npz, tmp_path, capsys):
    from skcannon.apogee.reference import load_reference_model
    from tests.conftest import REFERENCE_DIR

    model = load_reference_model(REFERENCE_DIR).save(tmp_path / "ref.h5")
    assert main(["posterior", str(real_npz), "--model", str(model), "-o",
                 str(tmp_path / "p")]) == 2
    one_error_line(capsys, "real_giants_100px.npz: wavelength grid (100 pixels) is not the "
                           "model's (7214 pixels)")


def test_calibration_folds_out_of_range_is_a_clean_error(real_npz, tmp_path, capsys):
    assert main(["train", str(real_npz), "-o", str(tmp_path / "m.h5"), "--no-progress",
                 "--calibration-folds", "1"]) == 2
    one_error_line(capsys, "calibration_folds must be 0 or 2..168 for 336 stars; got 1")


def test_unwritable_data_directory(tmp_path, capsys):
    """A data directory that cannot be created (here: under a regular file, which stops root
    too): one line naming the path, exit 2."""
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    selection = pd.DataFrame({"APOGEE_ID": ["2M00000000+0000000"], "TELESCOPE": ["apo25m"],
                              "FIELD": ["M15"]})
    selection.to_csv(tmp_path / "s.csv", index=False)
    status = main(["download", str(tmp_path / "s.csv"), "--data-dir", str(blocker / "data"),
                   "--archive-url", "http://127.0.0.1:9", "--no-progress"])
    assert status == 2
    one_error_line(capsys, "error:", str(blocker))


def test_a_port_in_use(tmp_path, capsys):
    import socket

    from tests.conftest import SHARED_APOGEE

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve-mirror", str(SHARED_APOGEE), "--port", str(port)]) == 2
    one_error_line(capsys, "skcannon serve-mirror: error:", "in use")


def test_integer_field_column_selects_its_stars():
    from skcannon.apogee.catalog import QualityCuts, select_giants

    catalog = pd.DataFrame({"APOGEE_ID": ["a", "b"], "TELESCOPE": "apo25m", "FIELD": [4123, 5000],
                            "SNR": 100.0, "STARFLAG": 0, "ASPCAPFLAG": 0, "TEFF": 4800.0,
                            "LOGG": 2.5, "FE_H": 0.0, "MG_FE": 0.1, "SI_FE": 0.1})
    selected = select_giants(catalog, fields=["4123"], cuts=QualityCuts(require_labels=False))
    assert list(selected.APOGEE_ID) == ["a"]


def test_a_second_run_into_the_same_directory_is_refused(real_npz, tmp_path, capsys):
    """The first run (another process) holds the directory; the second is refused naming it;
    once the first has died, its lock is stale and the directory is free again."""
    out = tmp_path / "validation"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom skcannon.integrity import output_lock\n"
         "with output_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(120)",
         str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["validate", str(real_npz), "--folds", "0", "-o", str(out)]) == 2
        one_error_line(capsys, f"{out}: in use by another skcannon run (pid {holder.pid}",
                       "choose another output directory")
        assert not (out / "accuracy.csv").exists()
    finally:
        holder.kill()
        holder.wait()
    assert main(["validate", str(real_npz), "--folds", "0", "-o", str(out)]) == 0
    assert (out / "accuracy.csv").is_file()


def test_report_with_a_wrong_shared_directory_says_what_is_missing(real_npz, tmp_path,
                                                                   capsys):
    from skcannon.data import open_dataset

    dataset = tmp_path / "real.h5"
    open_dataset(real_npz).save(dataset)
    model = tmp_path / "m.h5"
    assert main(["train", str(dataset), "-o", str(model), "--no-progress"]) == 0
    capsys.readouterr()
    status = main(["report", str(dataset), "--model", str(model), "--shared",
                   str(tmp_path / "WRONG"), "-o", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert status == 0 and "windows not found" in err
    html = (tmp_path / "r" / "index.html").read_text()
    assert "element windows (" in html and "were not found" in html
    assert "with the Mg and Si windows" not in html


def test_nn_training_refuses_null_labels(real_npz, tmp_path, capsys):
    pytest.importorskip("skorch")
    arrays = dict(np.load(real_npz))
    arrays["LOGG"][3] = -9999.0
    broken = tmp_path / "broken.npz"
    np.savez(broken, **arrays)
    assert main(["nn", "train", str(broken), "-o", str(tmp_path / "nn")]) == 2
    one_error_line(capsys, "1 of 336 training stars have unusable labels",
                   "star_3: LOGG null (-9999)")


def test_strings_in_catalog_numbers_are_missing_values(tmp_path, capsys):
    catalog = pd.DataFrame({"APOGEE_ID": ["a", "b"], "TELESCOPE": "apo25m", "FIELD": "M15",
                            "SNR": ["120", "high"], "STARFLAG": 0, "ASPCAPFLAG": 0,
                            "TEFF": ["4800", "n/a"], "LOGG": 2.5, "FE_H": 0.0, "MG_FE": 0.1,
                            "SI_FE": 0.1,
                            **{f"{x}_ERR": 0.01 for x in ("TEFF", "LOGG", "FE_H", "MG_FE",
                                                          "SI_FE")}})
    catalog.to_csv(tmp_path / "cat.csv", index=False)
    status = main(["select", str(tmp_path / "cat.csv"), "--fields", "M15", "-o",
                   str(tmp_path / "sel.csv")])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if status == 0:
        assert list(pd.read_csv(tmp_path / "sel.csv").APOGEE_ID) == ["a"]
    else:
        assert status == 2 and "SNR" in err


@pytest.mark.parametrize("command", [["train", "-o", "m.h5"], ["validate", "-o", "v"],
                                     ["nn", "train", "-o", "n"]])
def test_a_dataset_without_label_columns_is_one_error_line(command, tmp_path, capsys):
    """Unlabelled spectra (normalized arrays) given to a training command: the file is named,
    not an empty model and a traceback."""
    unlabelled = tmp_path / "unlabelled.npz"
    np.savez(unlabelled, flux=np.ones((30, 50)), flux_err=np.full((30, 50), 0.01))
    argv = [*command[:-2], str(unlabelled), command[-2], str(tmp_path / command[-1])]
    if command[0] == "nn":
        pytest.importorskip("skorch")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unlabelled.npz: no label columns" in err


# --- round 3 (issue #27): options that accepted NaN, and the CLI's remaining tracebacks ---

def _numeric_options():
    """Every option of every command that parses a number: (command path, option, type)."""
    import argparse

    from skcannon.cli import build_parser

    found, parsers = [], [((), build_parser())]
    while parsers:
        path, parser = parsers.pop()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers += [((*path, name), sub) for name, sub in action.choices.items()]
            elif action.type is not None and action.option_strings:
                found.append((" ".join(path), action.option_strings[-1], action.type))
    return found


def test_every_numeric_option_has_a_checked_type():
    """A bare ``type=float`` or ``int`` takes 'nan' (and float 'inf'): every number goes
    through a checked type that refuses them where it is parsed."""
    import argparse

    options = _numeric_options()
    assert len(options) > 30
    bare = [f"{cmd} {opt}" for cmd, opt, kind in options if kind in (float, int)]
    assert not bare, f"unchecked numeric options: {bare}"
    for _command, _option, kind in options:
        if getattr(kind, "__name__", "") in ("int", "float"):
            for text in ("nan", "inf", "-inf"):
                with pytest.raises(argparse.ArgumentTypeError):
                    kind(text)


@pytest.mark.parametrize("argv, message", [
    (["select", "x.csv", "--max-logg", "nan"], "argument --max-logg: nan is not a finite number"),
    (["select", "x.csv", "--min-feh", "nan", "--max-teff", "5000"],
     "argument --min-feh: nan is not a finite number"),
    (["run", "--max-teff", "nan"], "argument --max-teff: nan is not a finite number"),
    (["select", "x.csv", "--min-snr", "inf"], "argument --min-snr: inf is not a finite number"),
    (["simulate", "--model", "m.h5", "--snr", "inf"], "argument --snr: inf is not a finite"),
    (["train", "x.h5", "--regularization", "inf"], "argument --regularization: inf is not a"),
    (["outliers", "x.h5", "--model", "m.h5", "--window", "nan", "16100"],
     "argument --window: nan is not a finite number"),
    (["posterior", "x.h5", "--model", "m.h5", "--tune", "0"],
     "argument --tune: 0 is out of range (must be >= 1)"),
    (["nn", "compare", "x.h5", "--nn-dir", "d", "--fractions", "0.5", "1.5"],
     "argument --fractions: 1.5 is out of range (must be > 0 and <= 1)"),
])
def test_non_finite_and_out_of_range_options_are_refused_at_parse(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("snr, message", [
    (["100", "50"], "error: --snr: 100 50 is not an increasing range"),
    (["50", "100", "150"], "error: --snr: 50 100 150: give one value or a range MIN MAX"),
])
def test_simulate_refuses_a_reversed_or_long_snr_range(real_model, snr, message, tmp_path,
                                                       capsys):
    out = tmp_path / "s.h5"
    assert main(["simulate", "--model", str(real_model), "--snr", *snr, "-o", str(out)]) == 2
    one_error_line(capsys, message)
    assert not out.exists()


def test_simulate_does_not_quietly_write_fewer_spectra(real_model, tmp_path, capsys):
    """``--n 100000000`` wrote the 9409 giants of the label table without a word."""
    out = tmp_path / "s.h5"
    assert main(["simulate", "--model", str(real_model), "--n", "100000000",
                 "-o", str(out)]) == 2
    line = one_error_line(capsys, "error: --n: 100000000 spectra asked", "apogee_dr12_labels.csv")
    assert "ask for at most" in line and not out.exists()
    assert main(["simulate", "--model", str(real_model), "--n", "30", "--snr", "80",
                 "-o", str(out)]) == 0
    from skcannon.data import open_dataset

    assert len(open_dataset(out)) == 30


def test_simulate_with_a_label_table_lacking_columns_or_holding_text(real_model, tmp_path,
                                                                     capsys):
    table = pd.read_csv(shared_file("apogee", "labels", "apogee_dr12_labels.csv"), nrows=200)
    table.drop(columns=["LOGG"]).to_csv(tmp_path / "no_logg.csv", index=False)
    assert main(["simulate", "--model", str(real_model), "--labels",
                 str(tmp_path / "no_logg.csv"), "-o", str(tmp_path / "a.h5")]) == 2
    one_error_line(capsys, "no_logg.csv: label table lacks column(s) LOGG")
    table.assign(TEFF="hot").to_csv(tmp_path / "text.csv", index=False)
    assert main(["simulate", "--model", str(real_model), "--labels", str(tmp_path / "text.csv"),
                 "-o", str(tmp_path / "b.h5")]) == 2
    one_error_line(capsys, "text.csv: column(s) TEFF hold text, not numbers")


def test_a_label_named_twice_is_one_error_line(real_npz, tmp_path, capsys):
    assert main(["train", str(real_npz), "--labels", "TEFF", "LOGG", "TEFF", "-o",
                 str(tmp_path / "m.h5"), "--no-progress"]) == 2
    one_error_line(capsys, "error: --labels: TEFF named more than once")
    assert not (tmp_path / "m.h5").exists()


def test_posterior_refuses_too_few_pixels_and_samples_before_sampling(real_npz, real_model,
                                                                       tmp_path, capsys):
    """One usable pixel for three labels (a ValueError traceback from the sampler's setup), and
    fewer samples than labels (an AssertionError in the corner plot after sampling)."""
    arrays = dict(np.load(real_npz))
    arrays["flux_err"][0] = 1e10              # inverse variance 1e-20 > 0: masked below
    arrays["flux_err"][0, :2] = 0.01
    arrays["flux_err"][0, 2:] = np.inf
    few = tmp_path / "few.npz"
    np.savez(few, **arrays)
    start = time.perf_counter()
    assert main(["posterior", str(few), "--model", str(real_model), "-o",
                 str(tmp_path / "p")]) == 2
    one_error_line(capsys, "few.npz: row 0 (star_0) has 2 usable pixels; sampling 3 labels "
                           "needs more than 3")
    assert main(["posterior", str(real_npz), "--model", str(real_model), "--draws", "1",
                 "--chains", "2", "-o", str(tmp_path / "p2")]) == 2
    one_error_line(capsys, "error: --draws: 2 chains x 1 draws give 2 samples")
    assert time.perf_counter() - start < limit(10)
    assert not (tmp_path / "p2" / "chains.nc").exists()


@pytest.mark.parametrize("content, message", [
    ("label,bias\nTEFF,1\n", "no column scatter"),
    ("label,scatter\nTEFF,abc\nLOGG,0.1\nPARAM_M_H,0.05\n",
     "the scatter of TEFF is not a positive number"),
    ("label,scatter\nTEFF,50\nLOGG,0.1\n", "no row for PARAM_M_H"),
    ("label,scatter\nTEFF,50\nTEFF,60\nLOGG,0.1\nPARAM_M_H,0.05\n", "TEFF has several rows"),
    (b"\xff\xfe\x00junk", "cannot be read as a CSV table"),
])
def test_posterior_checks_the_cv_accuracy_table_before_sampling(real_npz, real_model, content,
                                                                message, tmp_path, capsys):
    cv = tmp_path / "accuracy.csv"
    cv.write_bytes(content if isinstance(content, bytes) else content.encode())
    start = time.perf_counter()
    assert main(["posterior", str(real_npz), "--model", str(real_model), "--cv-accuracy",
                 str(cv), "-o", str(tmp_path / "p")]) == 2
    one_error_line(capsys, f"error: --cv-accuracy: {cv}: {message}")
    assert time.perf_counter() - start < limit(10)


def test_cv_accuracy_is_taken_in_the_model_label_order(tmp_path):
    from skcannon.cli.reporting import _cv_scatter

    cv = tmp_path / "accuracy.csv"
    cv.write_text("label,bias,scatter\nLOGG,0,0.1\nTEFF,0,50\nFE_H,0,0.03\n")
    np.testing.assert_array_equal(_cv_scatter(str(cv), ["TEFF", "LOGG"]), [50.0, 0.1])
    assert _cv_scatter(None, ["TEFF"]) is None


def test_fit_writes_a_fits_table_for_non_ascii_file_names(tmp_path, capsys):
    """A non-ASCII input name in ``fit -o x.fits`` was a UnicodeEncodeError (FITS is bytes)."""
    from astropy.io import fits

    from skcannon.apogee.catalog import decode_fits_column
    from skcannon.apogee.reference import load_reference_model
    from tests.conftest import REFERENCE_DIR

    model = load_reference_model(REFERENCE_DIR).save(tmp_path / "ref.h5")
    bad = tmp_path / "apStar-dr17-étoile.fits"
    bad.write_bytes(b"junk")
    out = tmp_path / "labels.fits"
    assert main(["fit", str(bad), "--model", str(model), "-o", str(out)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    with fits.open(out) as hdul:
        assert decode_fits_column(hdul[1].data["PATH"]).tolist() == [str(bad)]
        assert "étoile" in decode_fits_column(hdul[1].data["PROBLEM"])[0]


def test_report_says_when_the_model_star_is_not_found(real_npz, tmp_path, capsys):
    from skcannon.data import open_dataset

    dataset = tmp_path / "real.h5"
    open_dataset(real_npz).save(dataset)
    model = tmp_path / "m.h5"
    assert main(["train", str(dataset), "-o", str(model), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["report", str(dataset), "--model", str(model), "--shared",
                 str(tmp_path / "WRONG"), "--model-star", "NOPE", "-o", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if line.startswith("note: --model-star: ")]
    assert len(notes) == 1
    assert "NOPE is not among the training-half stars; showing star_" in notes[0]
    shown = notes[0].split("showing ")[1].split(" instead")[0]
    html = (tmp_path / "r" / "index.html").read_text()
    assert f"NOPE is not among the training-half stars; showing {shown} instead." in html
    assert f"{shown}: normalized data with its 1-sigma band" in html


def test_spectrum_file_options_that_do_not_fit_the_model_are_one_error_line(real_model,
                                                                           tmp_path, capsys):
    """Guards (already refused before this round): a 7514-pixel continuum mask for a
    7214-pixel model, and a 100-pixel model given an apStar file."""
    from skcannon.apogee.reference import load_reference_model
    from tests.conftest import REFERENCE_DIR, SHARED_APOGEE

    apstar = next((SHARED_APOGEE / "dr17" / "stars").rglob("apStar-dr17-*.fits"), None)
    mask = SHARED_APOGEE / "continuum" / "dr17_contmask.npy"
    if apstar is None or not mask.is_file():
        pytest.skip("no apStar file or DR17 continuum mask in the shared data")
    model = load_reference_model(REFERENCE_DIR).save(tmp_path / "ref.h5")
    assert main(["fit", str(apstar), "--model", str(model), "--continuum", str(mask),
                 "-o", str(tmp_path / "x.csv")]) == 2
    one_error_line(capsys, "error: --continuum:", "mask has 7514 pixels", "7214")
    assert main(["posterior", str(apstar), "--model", str(real_model), "-o",
                 str(tmp_path / "p")]) == 2
    assert "the model has 100" in one_error_line(capsys, "skcannon posterior: error:")


def test_nn_compare_with_networks_of_other_labels_is_one_error_line(real_npz, tmp_path, capsys):
    """Was ``SystemExit`` with a bare message (exit 1), after training a Cannon."""
    pytest.importorskip("skorch")
    nets = tmp_path / "nn"
    assert main(["nn", "train", str(real_npz), "--kind", "mlp", "--max-epochs", "1",
                 "-o", str(nets)]) == 0
    capsys.readouterr()
    assert main(["nn", "compare", str(real_npz), "--labels", "TEFF", "LOGG", "--kind", "mlp",
                 "--nn-dir", str(nets), "--fractions", "-o", str(tmp_path / "c")]) == 2
    one_error_line(capsys, f"skcannon nn: error: --nn-dir: {nets}: the mlp network predicts "
                           "TEFF, LOGG, PARAM_M_H, not TEFF, LOGG")
    assert not (tmp_path / "c" / "comparison.csv").exists()
