"""``label_survey(..., visits=True)`` / ``survey --visits`` on a real LocalCluster: each real
DR17 apStar file's visits fitted jointly, one row per file, as Cannon.infer_visits fits them."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("distributed")

from skcannon.cli import main  # noqa: E402
from skcannon.errors import ExtrapolationWarning  # noqa: E402
from skcannon.survey import label_survey  # noqa: E402
from tests.conftest import CONTINUUM_FILE, SHARED_APOGEE  # noqa: E402
from tests.survey.test_model_spectra import _catalog  # noqa: E402
from tests.survey.test_survey import _pipeline  # noqa: E402


def test_survey_fits_each_files_visits_jointly(reference_model, tmp_path, scheduler):
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


def test_survey_visits_saves_one_model_spectrum_per_visit(reference_model, tmp_path,
                                                          scheduler):
    from skcannon.apogee.apstar_visits import read_apstar_visits
    from skcannon.data.build import default_preprocessor, normalize_spectra
    from skcannon.survey import read_model_spectra
    from skcannon.survey.visits import visit_model_spectra

    files = sorted(map(str, (SHARED_APOGEE / "dr17" / "stars").rglob("apStar-*.fits")))
    visits = [read_apstar_visits(f) for f in files]
    if not visits or max(map(len, visits)) < 2:
        pytest.skip("no shared DR17 apStar file with several visits")
    model = reference_model.save(tmp_path / "model.h5")
    out = tmp_path / "out"
    assert main(["survey", str(model), *files, "-o", str(out), "--continuum",
                 str(CONTINUUM_FILE), "--visits", "--save-model-spectra",
                 "--scheduler", scheduler]) == 0
    saved = read_model_spectra(out)
    table = _catalog(out / "survey.fits")
    n_visits = [len(v) for v in visits]
    assert saved["VISIT"].tolist() == [k for n in n_visits for k in range(n)]
    assert saved["APOGEE_ID"].tolist() == [v.apogee_id for v in visits
                                           for _ in range(len(v))]
    assert saved["CATALOG_ROW"].tolist() == [i for i, n in enumerate(n_visits)
                                             for _ in range(n)]
    pre = default_preprocessor(CONTINUUM_FILE)
    X = np.concatenate([normalize_spectra(v.X, pre).normalized for v in visits])
    fit = reference_model.infer_visits(X, groups=saved["APOGEE_ID"], rv_bounds=(-400, 400))
    np.testing.assert_allclose(table.RV, fit.rv, rtol=1e-6, atol=1e-9)   # the same fit
    direct = visit_model_spectra(reference_model.state_, X, fit, None)
    np.testing.assert_allclose(saved["model"], direct["model"], rtol=2e-6, atol=1e-6)
    assert np.all(saved["continuum"] == 1.0)
    used = (X[:, 1] > 0) & reference_model.state_.pixel_mask          # the model vs each visit
    chi2 = np.where(used, (X[:, 0] - saved["model"]) ** 2 * X[:, 1], 0).sum(1) / used.sum(1)
    with pytest.warns(ExtrapolationWarning):                 # these stars: outside its hull
        unshifted = reference_model.predict(fit.labels[np.repeat(np.arange(len(visits)),
                                                                 n_visits)])
    worse = np.where(used, (X[:, 0] - unshifted) ** 2 * X[:, 1], 0).sum(1) / used.sum(1)
    assert np.all(chi2 < 20) and np.all(chi2 < worse), (chi2, worse)   # each visit's RV


def test_survey_fits_rv_and_continuum_when_asked(reference_model, tmp_path, scheduler, capsys):
    """``survey --fit-rv --continuum-order``: the RV fitted (finite RV/RV_ERR; NaN without the
    option), and the option part of each part's identity (nothing reused across the two)."""
    files = sorted(map(str, (SHARED_APOGEE / "dr17" / "stars").rglob("apStar-*.fits")))[:3]
    if not files:
        pytest.skip("the shared DR17 apStar files are absent")
    model = reference_model.save(tmp_path / "model.h5")
    out = tmp_path / "out"
    common = ["survey", str(model), *files, "-o", str(out), "--continuum", str(CONTINUUM_FILE),
              "--scheduler", scheduler, "--no-progress"]
    assert main(common) == 0
    plain = _catalog(out / "survey.fits")
    assert main([*common, "--fit-rv", "--rv-max", "50", "--continuum-order", "1"]) == 0
    assert f"{len(files)} spectra" in capsys.readouterr().out
    fitted = _catalog(out / "survey.fits")
    assert plain.RV.isna().all() and np.isfinite(fitted.RV).all()
    assert (np.abs(fitted.RV) < 50).all() and (fitted.RV_ERR > 0).all()
    assert not np.allclose(fitted.TEFF, plain.TEFF, rtol=1e-9)   # refitted, not reused
