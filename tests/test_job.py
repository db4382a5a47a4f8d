"""The main job's real-data path: enough labelled stars in the catalog -> it trains on them.

The shared data hold only two real apStar files, so the archive here is a mirror of apStar-format
files written from raw-like spectra (real continua, error shapes and masks; flux from the
reference model at real DR12 labels), served over HTTP like the real archive.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from skcannon.apogee.archive import apstar_relpath
from skcannon.apogee.label_tables import dr12_giant_labels
from skcannon.apogee.mirror import ArchiveMirror
from skcannon.data.simulate import simulate_raw_spectra
from skcannon.pipeline.job import MIN_REAL_TRAINING_STARS, JobConfig, run_main_job
from skcannon.report.science import MAX_REAL_STAR_FIGURES
from tests.conftest import CONTINUUM_FILE, LABELS_CSV, SHARED


def write_apstar(path, star, field, snr, X_row):
    path.parent.mkdir(parents=True, exist_ok=True)
    header = fits.Header({"OBJID": star, "FIELD": field, "SNR": snr, "NVISITS": 1,
                          "CRVAL1": 4.179, "CDELT1": 6e-6, "NWAVE": 8575, "STARFLAG": 0})
    flux, ivar, mask = X_row
    error = np.where(ivar > 0, 1 / np.sqrt(np.where(ivar > 0, ivar, 1)), 1e10)
    hdus = [fits.PrimaryHDU(header=header)] + [
        fits.ImageHDU(a) for a in (flux.astype(np.float32), error.astype(np.float32),
                                   mask.astype(np.int16))]
    fits.HDUList(hdus).writeto(path)


@pytest.mark.slow
def test_main_job_trains_on_real_labelled_stars(reference_model, apstar_files, tmp_path):
    n = MIN_REAL_TRAINING_STARS + 20
    labels = dr12_giant_labels(LABELS_CSV, ["TEFF", "LOGG", "FE_H", "MG_FE", "SI_FE",
                                            "ALPHA_M"]).sample(n, random_state=5)
    labels = labels.reset_index(drop=True)
    rng = np.random.default_rng(5)
    snr = rng.uniform(80, 200, n)
    raw = simulate_raw_spectra(reference_model, labels[list(reference_model.label_names)], snr,
                               rng, apstar_files, CONTINUUM_FILE)
    mirror = tmp_path / "mirror"
    rows = []
    for i, row in labels.iterrows():
        star = f"2M{i:08d}+0000000"
        write_apstar(mirror / "dr17" / "stars" / apstar_relpath("apo25m", "M15", star)
                     .split("/stars/")[1], star, "M15", snr[i], raw[i])
        rows.append({"APOGEE_ID": star, "TELESCOPE": "apo25m", "FIELD": "M15", "SNR": snr[i],
                     "STARFLAG": 0, "ASPCAPFLAG": 0,
                     **{c: row[c] for c in ("TEFF", "LOGG", "FE_H", "MG_FE", "SI_FE")},
                     **{f"{c}_ERR": 0.01 for c in ("TEFF", "LOGG", "FE_H", "MG_FE", "SI_FE")}})
    pd.DataFrame(rows).to_csv(tmp_path / "catalog.csv", index=False)
    with ArchiveMirror(mirror) as server:
        result = run_main_job(JobConfig(shared=SHARED, catalog=str(tmp_path / "catalog.csv"),
                                        archive=server.url, data_dir=tmp_path / "data",
                                        fields=("M15",), output=tmp_path / "out",
                                        progress=False))
    assert result.training_source.startswith(f"real: {n} selected stars")
    assert list(result.accuracy.label) == ["TEFF", "LOGG", "FE_H", "MG_FE", "SI_FE"]
    assert result.accuracy.set_index("label").loc["TEFF", "robust_scatter"] < 150
    assert len(result.star_labels) == n and result.report.is_file()
    # a survey-sized job draws the worst-fitted real stars only, and says so
    drawn = sorted((tmp_path / "out" / "report").glob("model_vs_data_2M*.png"))
    assert len(drawn) == MAX_REAL_STAR_FIGURES
    assert f"{MAX_REAL_STAR_FIGURES} of the {n} real stars are drawn" in result.report.read_text()
    # the checkpoints are drawn from the real training set: cp1's corner plot says so
    from tests.report import pdfcheck

    cp1 = " ".join(pdfcheck.text(tmp_path / "out" / "checkpoints" / "lab2_cp1.pdf").split())
    assert f"Data source: real: {n} selected stars with ASPCAP labels" in cp1
    assert pdfcheck.problems(result.report.with_name("report.pdf")) == []
