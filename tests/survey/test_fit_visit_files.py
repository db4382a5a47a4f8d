"""``skcannon fit --visits`` on real DR17 apStar files: a multi-visit file gives its visit rows
(rows 2+ of HDUs 1-3), fitted jointly as :meth:`Cannon.infer_visits` fits them, one row per
star; an asStar file (the LCO name, same layout) likewise, and apVisit files may come along."""

import shutil

import numpy as np
import pandas as pd
import pytest

from skcannon.cli import main
from tests.conftest import CONTINUUM_FILE, SHARED_APOGEE


def _apstar_files():
    files = sorted(map(str, (SHARED_APOGEE / "dr17" / "stars").rglob("apStar-*.fits")))
    if not files:
        pytest.skip("the shared DR17 apStar files are absent")
    return files


def test_fit_visits_reads_an_apstar_files_visit_rows(reference_model, tmp_path):
    from skcannon.apogee.apstar_visits import read_apstar_visits
    from skcannon.data.build import default_preprocessor, normalize_spectra

    files = _apstar_files()
    visits = [read_apstar_visits(f) for f in files]
    if max(len(v) for v in visits) < 2:
        pytest.skip("no shared apStar file with several visits")
    model = reference_model.save(tmp_path / "model.h5")
    out = tmp_path / "visits.csv"
    assert main(["fit", *files, "--model", str(model), "--visits", "--continuum",
                 str(CONTINUUM_FILE), "-o", str(out)]) == 0
    table = pd.read_csv(out)
    assert table.APOGEE_ID.tolist() == [v.apogee_id for v in visits]
    assert table.N_VISITS.tolist() == [len(v) for v in visits]      # 3 for 2M17335483
    assert 3 in table.N_VISITS.tolist() and not table.RV_VARIABLE.any()
    assert np.all(np.abs(table.RV) < 2)                  # apStar visits are at rest
    pre = default_preprocessor(CONTINUUM_FILE)
    direct = reference_model.infer_visits(
        [normalize_spectra(v.X, pre).normalized for v in visits], rv_bounds=(-400, 400))
    for i, name in enumerate(reference_model.label_names):
        np.testing.assert_allclose(table[name], direct.labels[:, i], rtol=1e-6)


def test_fit_visits_takes_asstar_and_apvisit_files_together(reference_model, tmp_path):
    files = _apstar_files()
    apvisits = sorted(map(str, (SHARED_APOGEE / "visits").glob("apVisit-*.fits")))
    if not apvisits:
        pytest.skip("the shared apVisit files are absent")
    asstar = tmp_path / "asStar-dr17-2M17335483-2753043.fits"
    shutil.copyfile(files[0], asstar)           # the LCO product: same layout, other name
    model = reference_model.save(tmp_path / "model.h5")
    out = tmp_path / "mixed.csv"
    assert main(["fit", str(asstar), *apvisits, "--model", str(model), "--visits",
                 "--continuum", str(CONTINUUM_FILE), "--rv-max", "100", "-o", str(out)]) == 0
    table = pd.read_csv(out).set_index("APOGEE_ID")
    assert len(table) == 1 + len(apvisits)
    from skcannon.apogee.apstar_visits import read_apstar_visits

    assert table.N_VISITS.iloc[0] == len(read_apstar_visits(files[0]))
    assert table.N_VISITS.iloc[1:].tolist() == [1] * len(apvisits)
