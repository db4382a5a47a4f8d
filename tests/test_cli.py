"""The command line: every command has --help; select, download, read and run work."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from skcannon.apogee.reference import load_reference_model
from skcannon.cli import build_parser, main
from tests.conftest import REFERENCE_DIR, SHARED_APOGEE, shared_file


def commands() -> list[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return list(sub.choices)


@pytest.mark.parametrize("command", commands())
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: skcannon" in capsys.readouterr().out


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "skcannon.cli", "--version"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.startswith("skcannon ")


def test_read_prints_summary_and_fails_on_bad_file(apstar_files, tmp_path, capsys):
    bad = tmp_path / "apStar-dr17-bad.fits"
    bad.write_bytes(b"junk")
    assert main(["read", str(apstar_files[0]), str(bad)]) == 1
    captured = capsys.readouterr()
    assert apstar_files[0].stem.removeprefix("apStar-dr17-") in captured.out
    assert "apStar-dr17-bad.fits" in captured.err


def test_select_then_download(archive_server, apstar_files, tmp_path, capsys):
    url, _ = archive_server
    catalog = pd.DataFrame({
        "APOGEE_ID": [f.stem.removeprefix("apStar-dr17-") for f in apstar_files] + ["2M0-dwarf"],
        "TELESCOPE": "apo25m",
        "FIELD": [f.parent.name for f in apstar_files] + [apstar_files[0].parent.name],
        "SNR": 150.0, "STARFLAG": 0, "ASPCAPFLAG": 0,
        "TEFF": 4700.0, "LOGG": [2.5] * len(apstar_files) + [4.5], "FE_H": -0.1,
        "MG_FE": 0.1, "SI_FE": 0.05,
        **{f"{x}_ERR": 0.01 for x in ("TEFF", "LOGG", "FE_H", "MG_FE", "SI_FE")},
    })
    catalog.to_csv(tmp_path / "cat.csv", index=False)
    fields = sorted({f.parent.name for f in apstar_files})
    out = tmp_path / "sel.csv"
    assert main(["select", str(tmp_path / "cat.csv"), "--fields", *fields,
                 "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "giants" in text and f"{len(apstar_files)} stars written" in text
    assert main(["download", str(out), "--archive-url", url, "--data-dir",
                 str(tmp_path / "data"), "--no-progress"]) == 0
    assert f"{len(apstar_files)} downloaded" in capsys.readouterr().out


def test_select_unknown_field_is_a_clear_error(tmp_path, capsys):
    pd.DataFrame({c: [1] for c in ["APOGEE_ID", "TELESCOPE", "FIELD", "SNR", "STARFLAG",
                                   "ASPCAPFLAG", "TEFF", "LOGG", "FE_H", "MG_FE", "SI_FE",
                                   "TEFF_ERR", "LOGG_ERR", "FE_H_ERR", "MG_FE_ERR",
                                   "SI_FE_ERR"]}).to_csv(tmp_path / "c.csv", index=False)
    assert main(["select", str(tmp_path / "c.csv"), "--fields", "NOPE"]) == 2
    assert "unknown field(s) NOPE" in capsys.readouterr().err


def test_file_reads_are_counted(tmp_path, file_reads):
    """The read counter used below: two reads of one file count two, writes do not count."""
    path = tmp_path / "apStar-dr17-x.fits"
    path.write_bytes(b"x")
    path.read_bytes()
    with open(path, "rb") as handle:
        handle.read()
    assert file_reads.under(tmp_path) == {str(path.resolve()): 2}


@pytest.mark.slow
def test_main_job_end_to_end_against_local_mirror(apstar_files, tmp_path, capsys, file_reads):
    """The README's first command, offline: select ... report; each apStar file read once."""
    status = main(["run", "--mirror", str(SHARED_APOGEE), "--shared", str(SHARED_APOGEE.parent),
                   "--data-dir", str(tmp_path / "d"), "--output", str(tmp_path / "o"),
                   "--no-progress", "--n-simulated", "800"])
    assert status == 0
    out = capsys.readouterr().out
    assert "Data summary" in out and "Labels of the real spectra" in out
    assert "simulated" in out                      # says what the training data are
    # offline, the lab's five labels train on simulated spectra with Mg and Si windows
    assert "SIMULATED" in out and "Mg windows" in out
    accuracy = pd.read_csv(tmp_path / "o" / "accuracy.csv")
    assert list(accuracy.label) == ["TEFF", "LOGG", "FE_H", "MG_FE", "SI_FE"]
    report = tmp_path / "o" / "report" / "index.html"
    assert out.strip().endswith(f"report: {report}")
    summary = pd.read_csv(tmp_path / "o" / "data_summary.csv")
    assert len(summary) == len(apstar_files) and (summary.status == "downloaded").all()
    labels = pd.read_csv(tmp_path / "o" / "labels.csv")
    assert len(labels) == len(apstar_files) and labels.TEFF.between(3000, 6000).all()
    text = report.read_text()
    for figure in ("one_to_one.png", "pulls.png", "normalization_", "model_vs_data_",
                   "real_one_to_one.png"):
        assert figure in text
    # real data first: the real-set cross-validation precedes the simulated one, with its source
    assert text.index("Cross-validation on real spectra") < text.index(">Cross-validation<")
    assert "real_giants_100px.npz (real spectra)" in text
    real_cv = pd.read_csv(tmp_path / "o" / "real_cross_validation.csv").set_index("label")
    assert list(real_cv.index) == ["TEFF", "LOGG", "PARAM_M_H"]
    assert 100 < real_cv.loc["TEFF", "robust_scatter"] < 300
    assert "cross-validate (real spectra)" in out
    # console tables say what data they are on; the real-data table is printed
    assert "real-data cross-validation (real_giants_100px.npz, real spectra)" in out
    assert "split validation, test half of the training set (simulated" in out
    # what a student hands in: three checkpoint PDFs and a typeset report (no browser needed)
    from skcannon.apogee.constants import MYSTERY_STAR
    from tests.report import pdfcheck

    for pdf in [tmp_path / "o" / "checkpoints" / f"lab2_cp{n}.pdf" for n in (1, 2, 3)] + [
            report.with_name("report.pdf")]:
        assert pdfcheck.problems(pdf) == [], pdf
    cp3 = " ".join(pdfcheck.text(tmp_path / "o" / "checkpoints" / "lab2_cp3.pdf").split())
    assert f"Posterior of {MYSTERY_STAR}" in cp3 and "Priors: TEFF ~ Uniform(" in cp3
    assert f"Posterior of {MYSTERY_STAR}" in text
    assert "the posterior sd equals" not in text.lower()
    assert not (tmp_path / "o" / ".skcannon.lock").exists()      # removed by a normal end
    # every downloaded apStar file was read exactly once (by the download's validation;
    # under a temporary name, which is then renamed)
    reads = file_reads.under(tmp_path / "d")
    for star in labels.APOGEE_ID:
        of_star = [n for p, n in reads.items() if star in p and "apStar" in p]
        assert sum(of_star) == 1, (star, reads)


def test_train_fit_validate_take_arrays_of_any_length(tmp_path, capsys):
    """The real labelled set (100 pixels, no wavelengths) through train, fit and validate; a
    model of another grid refuses it with one line."""
    real = shared_file("apogee", "real_labelled", "real_giants_100px.npz")
    model = tmp_path / "model.h5"
    assert main(["train", str(real), "-o", str(model), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "336 stars x 100 pixels, labels TEFF, LOGG, PARAM_M_H" in out
    labels = tmp_path / "labels.csv"
    assert main(["fit", str(real), "--model", str(model), "-o", str(labels)]) == 0
    table = pd.read_csv(labels)
    assert len(table) == 336 and table.APOGEE_ID[0] == "star_0"
    truth = np.load(real)["TEFF"]
    assert np.median(np.abs(table.TEFF - truth)) < 200          # the model's own training set
    validation = tmp_path / "validation"
    assert main(["validate", str(real), "-o", str(validation), "--folds", "0"]) == 0
    accuracy = pd.read_csv(validation / "accuracy.csv").set_index("label")
    assert 50 < accuracy.loc["TEFF", "robust_scatter"] < 400
    assert (validation / "one_to_one.png").read_bytes().startswith(b"\x89PNG")
    other = tmp_path / "other.h5"
    load_reference_model(REFERENCE_DIR).save(other)
    capsys.readouterr()
    assert main(["fit", str(real), "--model", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "real_giants_100px.npz: wavelength grid (100 pixels) is " \
                                   "not the model's (7214 pixels)" in err


def test_fit_refuses_a_dataset_on_another_wavelength_grid(tmp_path, capsys):
    real = shared_file("apogee", "real_labelled", "real_giants_100px.npz")
    arrays = dict(np.load(real))
    model = tmp_path / "model.h5"
    shifted = tmp_path / "shifted.npz"
    np.savez(tmp_path / "with_grid.npz", wavelength=np.linspace(15200, 16900, 100), **arrays)
    np.savez(shifted, wavelength=np.linspace(15200, 16900, 100) + 0.5, **arrays)
    assert main(["train", str(tmp_path / "with_grid.npz"), "-o", str(model),
                 "--no-progress"]) == 0
    assert main(["fit", str(tmp_path / "with_grid.npz"), "--model", str(model),
                 "-o", str(tmp_path / "ok.csv")]) == 0
    capsys.readouterr()
    assert main(["fit", str(shifted), "--model", str(model)]) == 2
    assert "shifted.npz: wavelength grid (100 pixels, 15200.5-16900.5) is not the model's " \
           "(100 pixels, 15200-16900)" in capsys.readouterr().err


def test_train_drops_bad_labels_only_when_asked(tmp_path, capsys):
    real = shared_file("apogee", "real_labelled", "real_giants_100px.npz")
    arrays = dict(np.load(real))
    arrays["TEFF"][[4, 9]] = -9999.0
    broken = tmp_path / "broken.npz"
    np.savez(broken, **arrays)
    assert main(["train", str(broken), "-o", str(tmp_path / "m.h5"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "2 of 336 training stars have unusable labels" in err and "star_4" not in err
    assert "row 4: TEFF null (-9999)" in err
    assert main(["train", str(broken), "-o", str(tmp_path / "m.h5"), "--no-progress",
                 "--drop-bad-labels"]) == 0
    assert "334 (2 dropped for unusable labels)" in capsys.readouterr().out


def test_outliers_plots_spectra_without_wavelengths_over_every_pixel(tmp_path, capsys,
                                                                   real_model_file):
    real, model = real_model_file
    assert main(["outliers", str(real), "--model", str(model), "-o", str(tmp_path / "out"),
                 "--max-plots", "2"]) == 0
    plots = sorted((tmp_path / "out").glob("outlier_*.png"))
    assert len(plots) == 2
    from matplotlib.image import imread

    image = imread(plots[0])[..., :3]
    # ink covers > 6 % of the figure (an empty window leaves only axes and text: ~3 %)
    assert (image.mean(axis=-1) < 0.9).mean() > 0.06


def test_train_with_calibrated_uncertainties(tmp_path, capsys):
    real = shared_file("apogee", "real_labelled", "real_giants_100px.npz")
    model = tmp_path / "model.h5"
    assert main(["train", str(real), "-o", str(model), "--no-progress",
                 "--calibration-folds", "5"]) == 0
    assert "systematic floor   TEFF" in capsys.readouterr().out
    labels = tmp_path / "labels.csv"
    assert main(["fit", str(real), "--model", str(model), "-o", str(labels)]) == 0
    table = pd.read_csv(labels)
    floor2 = table.TEFF_ERR ** 2 - table.TEFF_ERR_FORMAL ** 2       # one floor for every star
    assert (floor2 > 100 ** 2).all() and np.ptp(floor2) < 1e-6 * floor2.max()


def test_read_does_not_guess_the_telescope_outside_the_archive_layout(apstar_files, tmp_path,
                                                                     capsys):
    """DR17 apStar headers have no TELESCOP: in the archive layout (stars/{telescope}/{field})
    the directory says it; elsewhere the directory two levels up is no telescope."""
    import shutil

    alone = tmp_path / "somewhere" / apstar_files[0].name
    alone.parent.mkdir()
    shutil.copy(apstar_files[0], alone)
    assert main(["read", str(apstar_files[0]), str(alone)]) == 0
    in_layout, outside = capsys.readouterr().out.splitlines()
    assert f"telescope={apstar_files[0].parent.parent.name} " in in_layout
    assert "telescope=unknown (no TELESCOP card; not in the archive layout)" in outside
    assert tmp_path.name not in outside


def test_train_drops_repeated_spectra_only_when_asked(tmp_path, capsys):
    real = shared_file("apogee", "real_labelled", "real_giants_100px.npz")
    arrays = dict(np.load(real))
    for key, values in arrays.items():             # stars 0-2 twice: 339 rows, 336 distinct
        if values.ndim and len(values) == 336:
            arrays[key] = np.concatenate([values, values[:3]])
    repeated = tmp_path / "repeated.npz"
    np.savez(repeated, **arrays)
    assert main(["train", str(repeated), "-o", str(tmp_path / "m.h5"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "3 of 339 training spectra repeat an earlier one" in err
    assert "--drop-duplicates" in err
    assert main(["train", str(repeated), "-o", str(tmp_path / "m.h5"), "--no-progress",
                 "--drop-duplicates"]) == 0
    assert "336 (3 dropped as repeated spectra)" in capsys.readouterr().out


def test_a_label_table_with_a_repeated_column_is_refused(tmp_path, capsys):
    table = tmp_path / "labels.csv"
    table.write_text("TEFF,LOGG,FE_H,TEFF\n4500,2.5,0.0,5200\n4600,2.4,-0.1,5300\n")
    assert main(["simulate", "--reference", str(REFERENCE_DIR), "--labels", str(table),
                 "--n", "2", "-o", str(tmp_path / "s.h5")]) == 2
    err = capsys.readouterr().err
    assert "error: " in err and "labels.csv: column TEFF appears more than once" in err
    assert "Traceback" not in err
