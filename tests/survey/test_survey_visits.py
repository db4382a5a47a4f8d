"""``label_survey(..., visits=True)`` / ``survey --visits`` on a real LocalCluster: each real
DR17 apStar file's visits fitted jointly, one row per file, as Cannon.infer_visits fits them."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("distributed")

from skcannon.cli import main  # noqa: E402
from skcannon.survey import label_survey  # noqa: E402
from tests.conftest import CONTINUUM_FILE, SHARED_APOGEE  # noqa: E402
from tests.survey.test_model_spectra import _catalog  # noqa: E402
from tests.survey.test_survey import _pipeline  # noqa: E402


def test_survey_fits_each_files_visits_jointly(reference_model, tmp_path, scheduler, capsys):
    from skcannon.apogee.apstar_visits import read_apstar_visits
    from skcannon.data.build import default_preprocessor, normalize_spectra

    files = sorted(map(str, (SHARED_APOGEE / "dr17" / "stars").rglob("apStar-*.fits")))
    if len(files) < 2:
        pytest.skip("the shared DR17 apStar files are absent")
    model = reference_model.save(tmp_path / "model.h5")
    corrupt = tmp_path / "apStar-dr17-2M00000000+0000000.fits"
    corrupt.write_bytes(b"SIMPLE  =                    T" + b"\0" * 100)
    result = label_survey(_pipeline(model), [*files, str(corrupt)], tmp_path / "out",
                          scheduler=scheduler, progress=False, visits=True)
    table = _catalog(result.catalog)
    assert table.STATUS.tolist() == ["fitted"] * len(files) + ["bad file"]
    visits = [read_apstar_visits(f) for f in files]
    assert table.N_VISITS.tolist()[:-1] == [len(v) for v in visits]
    assert 3 in table.N_VISITS.tolist() and not table.RV_VARIABLE.any()
    assert np.all(np.abs(table.RV[:-1]) < 2)            # the visits are at rest
    pre = default_preprocessor(CONTINUUM_FILE)
    direct = reference_model.infer_visits(
        [normalize_spectra(v.X, pre).normalized for v in visits], rv_bounds=(-400, 400))
    for i, name in enumerate(reference_model.label_names):
        np.testing.assert_allclose(table[name][:-1], direct.labels[:, i], rtol=1e-6)
    assert main(["survey", str(model), *files, "-o", str(tmp_path / "both"), "--continuum",
                 str(CONTINUUM_FILE), "--visits", "--save-model-spectra"]) == 2
    err = capsys.readouterr().err
    assert "error: --save-model-spectra: not available with --visits" in err
    assert "Traceback" not in err
