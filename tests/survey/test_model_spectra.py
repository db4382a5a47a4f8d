"""``label_survey(save_model_spectra=True)`` / ``survey --save-model-spectra`` on a real
LocalCluster and the shared apStar files: one sealed model-spectra file per part, found again
by APOGEE_ID, equal to the model at the catalog's labels; parts without them recomputed."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pytest

pytest.importorskip("distributed")

from skcannon.cli import main  # noqa: E402
from skcannon.errors import ExtrapolationWarning, SkcannonError  # noqa: E402
from skcannon.survey import label_survey, read_model_spectra  # noqa: E402
from skcannon.survey.spectra import model_spectra_path  # noqa: E402
from tests.survey.test_survey import _pipeline, survey_inputs  # noqa: E402, F401


def _catalog(path):
    from astropy.table import Table

    table = Table.read(path).to_pandas()
    for name in ("APOGEE_ID", "STATUS"):
        table[name] = [v.decode() if isinstance(v, bytes) else v for v in table[name]]
    return table


def test_model_spectra_are_saved_found_and_recomputed_when_missing(survey_inputs,  # noqa: F811
                                                                  reference_model, tmp_path,
                                                                  scheduler):
    files, model = survey_inputs
    files = files[:6]                                # the corrupt file is the 4th
    out = tmp_path / "out"
    plain = label_survey(_pipeline(model), files, out, chunk_size=4, scheduler=scheduler,
                         progress=False)
    with pytest.raises(SkcannonError, match="saved no model spectra"):
        read_model_spectra(out)
    log = io.StringIO()
    saved = label_survey(_pipeline(model), files, out, chunk_size=4, scheduler=scheduler,
                         progress=False, save_model_spectra=True, log=log)
    assert saved.parts == plain.parts and saved.computed == len(plain.parts)   # recomputed
    assert "model spectra (part-000000-" in log.getvalue() and "are missing" in log.getvalue()
    table = _catalog(saved.catalog)
    spectra = read_model_spectra(out)
    fitted = np.flatnonzero(table.STATUS == "fitted")
    np.testing.assert_array_equal(spectra["CATALOG_ROW"], fitted)
    assert list(spectra["APOGEE_ID"]) == list(table.APOGEE_ID[fitted])
    labels = table.loc[fitted, list(reference_model.label_names)].to_numpy()
    with warnings.catch_warnings():                  # some real stars lie outside the range
        warnings.simplefilter("ignore", ExtrapolationWarning)
        expected = reference_model.predict(labels)
    np.testing.assert_allclose(spectra["model"], expected, rtol=2e-6,
                               atol=2e-6)            # float32; no RV, no continuum fitted
    assert np.all(spectra["continuum"] == 1.0)
    assert spectra["model"].shape == (len(fitted), reference_model.theta_.shape[0])
    one = read_model_spectra(out, apogee_id=table.APOGEE_ID[fitted[-1]])
    assert list(one["CATALOG_ROW"]) == [fitted[-1]]
    damaged = model_spectra_path(saved.parts[1])
    damaged.write_bytes(damaged.read_bytes()[:-100])
    again = label_survey(_pipeline(model), files, out, chunk_size=4, scheduler=scheduler,
                         progress=False, save_model_spectra=True)
    assert again.computed == 1 and list(again.recomputed) == [saved.parts[1]]
    np.testing.assert_array_equal(read_model_spectra(out)["model"], spectra["model"])
    summary = json.loads((out / "survey_summary.json").read_text())
    assert [e["first_row"] for e in summary["model_spectra"]] == [0, 4]


def test_survey_command_saves_model_spectra(survey_inputs, tmp_path, scheduler,  # noqa: F811
                                            capsys):
    files, model = survey_inputs
    from tests.conftest import CONTINUUM_FILE

    assert main(["survey", str(model), *files[:2], "-o", str(tmp_path / "s"), "--continuum",
                 str(CONTINUUM_FILE), "--scheduler", scheduler, "--no-progress",
                 "--save-model-spectra"]) == 0
    assert "model spectra: 1 files in" in capsys.readouterr().out
    spectra = read_model_spectra(tmp_path / "s")
    assert len(spectra["model"]) == 2 and np.isfinite(spectra["model"]).all()
    assert spectra["wavelength"] is None or spectra["wavelength"].shape == (
        spectra["model"].shape[1],)
