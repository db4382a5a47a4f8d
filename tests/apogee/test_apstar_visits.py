"""The visits of real DR17 apStar files (rows 2+ of HDUs 1-3) as (n_visits, 3, n_pixels)."""

import numpy as np
import pytest

from skcannon.apogee.apstar_visits import read_apstar_visits
from skcannon.apogee.reader import read_apstar
from skcannon.errors import BadFileError
from skcannon.spectra import FLUX, IVAR, MASK
from tests.conftest import SHARED_APOGEE


def _file(name):
    found = sorted((SHARED_APOGEE / "dr17" / "stars").rglob(f"apStar-dr17-{name}.fits"))
    if not found:
        pytest.skip(f"the shared apStar file of {name} is absent")
    return found[0]


def test_a_three_visit_file_gives_its_three_visit_rows():
    from astropy.io import fits

    path = _file("2M17335483-2753043")                   # NVISITS = 3, 5 rows per HDU
    visits = read_apstar_visits(path)
    assert visits.X.shape == (3, 3, 8575) and len(visits) == 3
    with fits.open(path) as hdul:
        np.testing.assert_array_equal(visits.X[:, FLUX], hdul[1].data[2:])
        np.testing.assert_array_equal(visits.X[:, MASK], hdul[3].data[2:])
        header = hdul[0].header
        expected = [header[f"VHELIO{k}"] for k in (1, 2, 3)]
        good = (hdul[2].data[2:] > 0) & (visits.X[:, IVAR] > 0)
        np.testing.assert_allclose(visits.X[:, IVAR][good], hdul[2].data[2:][good] ** -2.0)
    np.testing.assert_allclose(visits.vhelio, expected)
    assert np.all(visits.vhelio_err > 0) and np.all(visits.snr > 0)
    assert visits.apogee_id == "2M17335483-2753043"
    combined = read_apstar(path)
    assert not np.array_equal(visits.X[0, FLUX], combined.flux)     # not the combined row
    np.testing.assert_array_equal(visits.wavelength, combined.wavelength)


def test_a_single_visit_file_gives_its_combined_row():
    path = _file("2M19485057+5005279")                   # NVISITS = 1, 2 rows per HDU
    visits = read_apstar_visits(path)
    combined = read_apstar(path)
    assert visits.X.shape == (1, 3, 8575)
    np.testing.assert_array_equal(visits.X[0, FLUX], combined.flux)
    np.testing.assert_array_equal(visits.X[0, IVAR], combined.ivar)


def test_a_truncated_file_is_refused(tmp_path):
    path = _file("2M17335483-2753043")
    cut = tmp_path / path.name
    cut.write_bytes(path.read_bytes()[:-5000])
    with pytest.raises(BadFileError, match=str(cut)):
        read_apstar_visits(cut)


def test_the_visits_fitted_jointly_are_consistent_and_at_rest(reference_model):
    """The three real visits, preprocessed as the combined spectrum is and fitted together by
    the published APOKASC model (Cannon.infer_visits): one star, three small residual RVs (the
    visits are in the rest frame), not RV-variable, labels near the combined row's."""
    from skcannon.data.build import default_preprocessor, normalize_spectra
    from tests.conftest import CONTINUUM_FILE

    path = _file("2M17335483-2753043")
    visits = read_apstar_visits(path)
    preprocessor = default_preprocessor(CONTINUUM_FILE)
    normalized = normalize_spectra(visits.X, preprocessor).normalized
    fit = reference_model.infer_visits([normalized], rv_bounds=(-50, 50))
    assert fit.labels.shape == (1, len(reference_model.label_names))
    assert fit.n_visits.tolist() == [3] and not fit.rv_variable[0]
    assert np.all(np.abs(fit.visit_rv[0]) < 2) and np.all(fit.visit_rv_err[0] < 0.5)
    combined = reference_model.infer_labels(normalize_spectra(
        _combined_X(path), default_preprocessor(CONTINUUM_FILE)).normalized)
    spread = np.abs(fit.labels - combined.labels)[0] / combined.uncertainties[0]
    assert np.all(spread < 5), spread


def _combined_X(path):
    from skcannon.apogee.reader import stack_apstar

    return stack_apstar([read_apstar(path)])
