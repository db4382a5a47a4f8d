"""Science outputs: isochrones, surface gravity, element windows, figures and the report."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from skcannon.apogee.catalog import QualityCuts
from skcannon.apogee.windows import load_element_windows, window_enrichment
from skcannon.cli import main
from skcannon.data.dataset import SpectralDataset
from skcannon.data.isochrones import (
    IsochroneNotFound,
    giant_branch,
    lachesis_isochrone,
    load_isochrone,
    read_mist_csv,
    read_mist_iso,
    surface_gravity,
    teff_on_giant_branch,
)
from skcannon.plotting import save_figure
from skcannon.plotting.science import corner_figure, kiel_figure, sequence_figure
from tests.conftest import SHARED, shared_file

ISO_DIR = SHARED / "isochrones" / "mist_v1.2"


def test_surface_gravity_of_a_solar_mass_star():
    np.testing.assert_allclose(surface_gravity(1.0, [1, 15, 100]), [4.44, 2.09, 0.44], atol=0.005)
    with pytest.raises(ValueError):
        surface_gravity(-1, 1)


@pytest.mark.parametrize(("feh", "teff_at_25"), [(0.0, 4550), (-1.0, 4990)])
def test_shared_isochrones_giant_branch(feh, teff_at_25):
    shared_file("isochrones", "mist_v1.2")
    iso = load_isochrone(feh, 6.0, ISO_DIR)
    assert abs(teff_on_giant_branch(iso, 2.5) - teff_at_25) / teff_at_25 < 0.015
    rgb = giant_branch(iso)
    assert (rgb.phase == 2).all() and rgb.log_g.is_monotonic_decreasing


def test_lachesis_grid_interpolation_matches_the_shared_export():
    pytest.importorskip("lachesis_grids")
    shared = read_mist_csv(shared_file("isochrones", "mist_v1.2",
                                       "MIST_v1.2_feh_p0.00_6Gyr_interp_EEP.csv"))
    ours = lachesis_isochrone(0.0, 6.0)
    both = shared.merge(ours, on="eep", suffixes=("_s", "_o"))
    assert len(both) > 1000
    np.testing.assert_allclose(both.log_Teff_o, both.log_Teff_s, atol=1e-5)
    np.testing.assert_allclose(both.log_g_o, both.log_g_s, atol=1e-5)


def test_mist_iso_text_format(tmp_path):
    table = read_mist_csv(shared_file("isochrones", "mist_v1.2",
                                      "MIST_v1.2_feh_m1.00_logage9.75.csv"))
    columns = ["EEP", "log10_isochrone_age_yr", "initial_mass", "star_mass", "log_Teff",
               "log_g", "log_L", "phase"]
    body = table[["eep", "age", "initial_mass", "star_mass", "log_Teff", "log_g", "log_L",
                  "phase"]].to_numpy()
    lines = ["# MIST version number  = 1.2", "#  Yinit        Zinit   [Fe/H]   [a/Fe]  v/vcrit",
             "#  0.2539   1.4e-03    -1.00     0.00     0.40", "# number of EEPs, cols = 1 8",
             "#" + "".join(f"{c:>25}" for c in columns)]
    lines += ["".join(f"{v:25.8g}" for v in row) for row in body]
    path = tmp_path / "test.iso"
    path.write_text("\n".join(lines) + "\n")
    (age, feh, parsed), = read_mist_iso(path)
    assert feh == -1.0 and abs(age - 9.75) < 1e-6
    np.testing.assert_allclose(parsed.Teff, 10 ** table.log_Teff, rtol=1e-6)
    iso = load_isochrone(-1.0, 10 ** 9.75 / 1e9, tmp_path)
    assert len(iso) == len(table)


def test_missing_isochrones_say_how_to_get_them(tmp_path, monkeypatch):
    import skcannon.data.isochrones as module

    monkeypatch.setattr(module, "_lachesis_grid", lambda: None)
    with pytest.raises(IsochroneNotFound, match="pip install .*isochrones"):
        load_isochrone(0.0, 6.0, tmp_path)


def test_element_windows_on_the_model_grid(reference_model):
    path = shared_file("apogee", "aspcap_windows", "aspcap_l31c_masks.npy")
    windows = load_element_windows(path, reference_model.wavelength_)
    assert 80 < windows["Mg"].sum() <= 106 and 80 < windows["Si"].sum() <= 102
    gradient = np.zeros(reference_model.wavelength_.size)
    gradient[np.flatnonzero(windows["Mg"])[:20]] = 1.0   # the strongest pixels: all Mg
    result = window_enrichment(gradient, windows["Mg"], np.ones_like(gradient, bool), 20)
    assert result["fraction"] == 1.0 and result["enrichment"] > 50 and result["p_value"] < 1e-20
    # the published model's [alpha/M] gradient is strongest in Mg lines: far above chance
    alpha = reference_model.gradient(np.array([[4700, 2.5, 0.0, 0.05]]))[0, 3]
    real = window_enrichment(alpha, windows["Mg"], reference_model.pixel_mask_, 100)
    assert real["fraction"] > 5 * real["chance_fraction"]


def test_figures(reference_model, giant_labels, tmp_path):
    labels = giant_labels.sample(400, random_state=0)
    names = list(reference_model.label_names)
    corner = corner_figure(labels, names, QualityCuts())
    assert any(line.get_color() == "tab:red" for ax in corner.axes for line in ax.lines)
    iso = {"solar": load_isochrone(0.0, 6.0, ISO_DIR)} if ISO_DIR.is_dir() else {}
    kiel = kiel_figure(labels.TEFF, labels.LOGG, labels.FE_H, iso)
    ax = kiel.axes[0]
    assert ax.get_xlim()[0] > ax.get_xlim()[1] and ax.get_ylim()[0] > ax.get_ylim()[1]
    fehs = np.linspace(-1, 0.5, 5)
    grid = np.c_[np.full(5, 4700), np.full(5, 2.5), fehs, np.full(5, 0.05)]
    seq = sequence_figure(reference_model, grid, fehs, "[Fe/H]")
    assert len(seq.axes[0].lines) == 5
    for name, figure in (("corner.png", corner), ("kiel.png", kiel), ("seq.png", seq)):
        image = imread(save_figure(figure, tmp_path / name))
        assert image.shape[0] > 300 and image[..., :3].std() > 0.02


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
def test_report_renders_in_headless_chromium(simulated_set, reference_model, apstar_files,
                                             tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian package 'chromium'; .ci/run installs it)")
    labels, X, snr = simulated_set
    table = labels.assign(SNR=snr)
    SpectralDataset(reference_model.wavelength_, X[:, 0], X[:, 1], X[:, 2].astype(np.int64),
                    table, np.zeros(len(X), dtype=np.int64)).save(tmp_path / "d.h5")
    assert main(["train", str(tmp_path / "d.h5"), "-o", str(tmp_path / "m.h5")]) == 0
    out = tmp_path / "report"
    assert main(["report", str(tmp_path / "d.h5"), "--model", str(tmp_path / "m.h5"),
                 "--apstar", *map(str, apstar_files), "--shared", str(SHARED),
                 "-o", str(out)]) == 0
    page = (out / "index.html").as_uri()
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=15000", "--dump-dom", page],
        capture_output=True, text=True, timeout=120).stdout
    assert 'data-loaded="yes"' in dom
    widths = [int(w) for w in re.findall(r'data-natural-width="(\d+)"', dom)]
    images = dom.count("<img")
    assert images >= 8 and len(widths) == images and min(widths) > 0
    for table in ("Cross-validation", "robust_scatter", "Top-100"):
        assert table in dom
    assert dom.count("<table") >= 4
    pdf = (out / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF")
    check_pdf_layout(out / "report.pdf", tmp_path, titles=("Cross-validation", "Top-100"))


def check_pdf_layout(pdf: Path, tmp_path: Path, titles=()) -> None:
    """Every word of every page lies on its page (pdftotext's word boxes), pages render to
    PNG (pdftoppm) with ink on them, and the section titles are text, not pictures."""
    if shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None:
        pytest.skip("poppler-utils is not installed (.ci/run installs it)")
    layout = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True,
                            text=True, check=True).stdout
    pages = re.findall(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', layout,
                       flags=re.S)
    assert len(pages) >= 2
    words = 0
    for width, height, body in pages:
        for x0, y0, x1, y1, word in re.findall(
                r'<word xMin="([-\d.]+)" yMin="([-\d.]+)" xMax="([-\d.]+)" '
                r'yMax="([-\d.]+)">([^<]*)</word>', body):
            words += 1
            assert float(x0) >= 0 and float(y0) >= 0, word
            assert float(x1) <= float(width) + 0.5 and float(y1) <= float(height) + 0.5, word
    assert words > 200
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    for title in titles:
        assert title in text
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "2", str(pdf),
                    str(tmp_path / "page")], check=True)
    from matplotlib.image import imread

    rendered = sorted(tmp_path.glob("page-*.png"))
    assert len(rendered) == 2
    for png in rendered:
        image = imread(png)[..., :3]
        assert (image.mean(axis=-1) < 0.9).mean() > 0.01        # ink on the page


@pytest.mark.parametrize(("content", "problem"), [
    (None, "not found"), (b"junk", "cannot be read"), ("short", "expected 7514 integer")])
def test_element_window_file_problems_are_bad_file_errors(tmp_path, content, problem):
    from skcannon.errors import BadFileError

    path = tmp_path / "windows.npy"
    if content == "short":
        np.save(path, np.zeros(10, np.int32))
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(BadFileError, match=problem):
        load_element_windows(path, np.linspace(15200, 16900, 100))


def test_plot_segments_are_the_apogee_chips():
    """Plots split lines where the grid jumps: on the 7214-pixel grid exactly at APOGEE's chip
    gaps, found without any survey knowledge."""
    from skcannon.apogee.grids import aspcap_dr12_wavelength, chip_of
    from skcannon.plotting.common import contiguous_segments

    wavelength = aspcap_dr12_wavelength()
    chips = chip_of(wavelength)
    segments = contiguous_segments(wavelength)
    assert len(segments) == 3
    for k, part in enumerate(segments):
        assert (chips[part] == k).all() and (chips == k).sum() == part.stop - part.start
    assert contiguous_segments(np.linspace(1, 2, 50)) == [slice(0, 50)]


def test_the_report_draws_the_worst_fitted_real_stars_only():
    from skcannon.report.science import real_stars_to_show

    chi2 = np.array([1.0, 9.0, np.nan, 3.0, 7.0, 2.0])
    assert list(real_stars_to_show(chi2, most=10)) == [0, 1, 2, 3, 4, 5]     # all, in order
    assert list(real_stars_to_show(chi2, most=3)) == [1, 3, 4]              # largest chi^2
    assert list(real_stars_to_show(np.full(4, np.nan), most=2)) == [0, 1]
