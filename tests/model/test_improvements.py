"""The model improvements of #13: term lists and order 3, censoring, error factors, cleaning."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from skcannon.errors import BadFileError
from skcannon.inference.fitting import StarSystems
from skcannon.model import Cannon
from skcannon.model.vectorizer import PolynomialVectorizer, format_terms, parse_terms
from skcannon.spectra import stack_spectra
from tests.conftest import SHARED

NAMES = ("TEFF", "LOGG", "PARAM_M_H")


def test_terms_in_label_vector_notation_round_trip():
    spec = "TEFF^4 TEFF^3 TEFF^2 TEFF LOGG^2 LOGG TEFF*LOGG PARAM_M_H"
    terms = parse_terms(spec, NAMES)
    assert terms[0] == () and (0, 0, 0, 0) in terms and (0, 1) in terms and len(terms) == 9
    assert parse_terms(format_terms(terms, NAMES), NAMES) == terms
    for bad, message in [("TEFF LOGG", "linear term of PARAM_M_H"),
                         ("TEFF LOGG PARAM_M_H FEH", "'FEH' is not one of"),
                         ("TEFF LOGG PARAM_M_H TEFF", "twice"),
                         ("TEFF LOGG PARAM_M_H TEFF^x", "power 'x'")]:
        with pytest.raises(ValueError, match=message):
            parse_terms(bad, NAMES)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_jacobian_matches_finite_differences(order):
    vectorizer = PolynomialVectorizer(3, order=order)
    labels = np.random.default_rng(order).normal(size=(4, 3))
    step = 1e-6
    numeric = np.stack([(vectorizer.design_matrix(labels + step * np.eye(3)[j])
                         - vectorizer.design_matrix(labels - step * np.eye(3)[j])) / (2 * step)
                        for j in range(3)], axis=2)
    np.testing.assert_allclose(vectorizer.jacobian(labels), numeric, atol=1e-6)
    assert vectorizer.n_terms == {1: 4, 2: 10, 3: 20}[order]


def _spectra(flux: np.ndarray, sigma: float) -> np.ndarray:
    return stack_spectra(flux, np.full(flux.shape, sigma ** -2.0))


def test_a_known_cubic_term_is_recovered():
    rng = np.random.default_rng(1)
    n, p = 400, 30
    labels = rng.uniform(-2, 2, size=(n, 2))
    response, response_b = rng.uniform(0.01, 0.03, size=(2, p))

    def truth(values):
        a, b = values[:, :1], values[:, 1:]
        return 1 + response * (a + 0.5 * a ** 3) - 0.3 * response_b * b

    X = _spectra(truth(labels) + rng.normal(0, 1e-3, (n, p)), 1e-3)
    test = rng.uniform(-1.9, 1.9, size=(50, 2))
    cubic = Cannon(("A", "B"), terms="A^3 A^2 A B", n_error_factors=0).fit(labels, X)
    quadratic = Cannon(("A", "B"), order=2, n_error_factors=0).fit(labels, X)
    cubic_error = np.abs(cubic.predict(test) - truth(test)).max()
    assert cubic_error < 1e-3                      # the noise level
    assert np.abs(quadratic.predict(test) - truth(test)).max() > 5 * cubic_error
    # the fitted coefficient of A^3 is the true one in scaled units: 0.5 response scale^3
    scale = cubic.scaling_.scales[0]
    index = cubic.vectorizer_.terms.index((0, 0, 0))
    np.testing.assert_allclose(cubic.theta_[:, index], 0.5 * response * scale ** 3, rtol=0.05)
    # and label fitting inverts it
    fit = cubic.infer_labels(_spectra(truth(test), 1e-3))
    np.testing.assert_allclose(fit.labels, test, atol=0.03)     # 1 % of the label range
    order3 = Cannon(("A", "B"), order=3, n_error_factors=0).fit(labels, X)
    assert order3.theta_.shape[1] == 10


def _element_windows():
    from skcannon.apogee.grids import aspcap_dr12_wavelength
    from skcannon.apogee.windows import load_element_windows

    path = SHARED / "apogee" / "aspcap_windows" / "aspcap_l31c_masks.npy"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    wavelength = aspcap_dr12_wavelength()
    return load_element_windows(path, wavelength)


def test_censoring_keeps_each_abundance_on_its_own_lines():
    """[Mg/Fe] acts only in Mg windows and [Si/Fe] only in Si windows (correlated in the
    training set, as alpha elements are): the censored model's Mg and Si terms are exactly zero
    outside their windows and it recovers each abundance from its own lines; the uncensored one
    borrows the other element's lines."""
    windows = _element_windows()
    mg, si = windows["Mg"], windows["Si"]
    p = mg.size
    rng = np.random.default_rng(5)
    names = ("T", "MG_FE", "SI_FE")     # T: a scaled temperature-like label (no units)
    n = 500
    teff = rng.uniform(-1, 1, n)
    alpha = rng.uniform(-1, 1, n)
    labels = np.column_stack([teff, alpha + 0.15 * rng.normal(size=n),
                              alpha + 0.15 * rng.normal(size=n)])
    t_response = 0.02 * rng.uniform(0.2, 1, p)

    def truth(values):
        return (1 + values[:, :1] * t_response + 0.04 * values[:, 1:2] * mg
                + 0.04 * values[:, 2:3] * si)

    sigma = 0.01
    X = _spectra(truth(labels) + rng.normal(0, sigma, (n, p)), sigma)
    censored = Cannon(names, order=1, n_error_factors=0,
                      censors={"MG_FE": mg, "SI_FE": si}).fit(labels, X)
    free = Cannon(names, order=1, n_error_factors=0).fit(labels, X)
    for i, window in ((1, mg), (2, si)):
        column = censored.vectorizer_.terms.index((i,))
        assert np.all(censored.theta_[~window, column] == 0)
        assert np.all(censored.theta_[window, column] != 0)
        assert np.any(np.abs(free.theta_[~window, column]) > 0)
    # test stars: Mg varies, Si fixed; how much of Mg leaks into the fitted Si?
    test = np.column_stack([np.zeros(60), np.linspace(-0.9, 0.9, 60), np.zeros(60)])
    Y = _spectra(truth(test) + rng.normal(0, sigma, (60, p)), sigma)
    leak = {name: np.polyfit(test[:, 1], model.infer_labels(Y).labels[:, 2], 1)[0]
            for name, model in (("censored", censored), ("free", free))}
    assert abs(leak["censored"]) < 0.05
    assert abs(leak["free"]) > 3 * abs(leak["censored"])


def test_censoring_refuses_bad_masks():
    X = _spectra(np.ones((30, 12)) + np.random.default_rng(0).normal(0, 0.01, (30, 12)), 0.01)
    labels = [4500, 2.5, 0] + [200, 0.5, 0.1] * np.random.default_rng(1).normal(size=(30, 3))
    with pytest.raises(ValueError, match="not one of the labels"):
        Cannon(NAMES, order=1, censors={"FE_H": np.ones(12, bool)}).fit(labels, X)
    with pytest.raises(ValueError, match=r"shape \(12,\)"):
        Cannon(NAMES, order=1, censors={"LOGG": np.ones(11, bool)}).fit(labels, X)


def test_error_factor_statistics_equal_the_dense_covariance():
    rng = np.random.default_rng(3)
    n, p, k, r = 5, 40, 4, 3
    theta, s2 = rng.normal(size=(p, k)), rng.uniform(0, 1e-3, p)
    flux, ivar = rng.normal(1, 0.1, (n, p)), rng.uniform(50, 200, (n, p))
    ivar[0, :5] = 0
    factors = 0.05 * rng.normal(size=(p, r))
    centre = rng.normal(size=(n, k))
    stats = StarSystems(theta, s2, np.ones(p, bool), flux, ivar, factors).around(centre)
    for star in range(n):
        good = ivar[star] > 0
        cov = np.diag(1 / ivar[star, good] + s2[good]) + factors[good] @ factors[good].T
        inverse = np.linalg.inv(cov)
        residual = flux[star, good] - theta[good] @ centre[star]
        np.testing.assert_allclose(stats.G[star], theta[good].T @ inverse @ theta[good],
                                   rtol=1e-8)
        np.testing.assert_allclose(stats.h[star], theta[good].T @ inverse @ residual, rtol=1e-8)
        np.testing.assert_allclose(stats.c[star], residual @ inverse @ residual, rtol=1e-8)


def test_error_factors_on_real_spectra_all_paths_agree(real_set):
    X, y = real_set.X, real_set.table[list(NAMES)].to_numpy(float)
    model = Cannon(NAMES, n_error_factors=5).fit(y[:200], X[:200])
    assert model.error_factors_.shape == (100, 5)
    test = X[200:210]
    lm = model.infer_labels(test)
    trf = model.infer_labels(test, method="trf")
    # the same chi^2 (the marginal one of the full covariance): LM's multi-start minimum is
    # never worse, and where both found the same minimum the labels agree
    assert np.all(lm.chi2 <= trf.chi2 * (1 + 1e-6))
    same = np.isclose(lm.chi2, trf.chi2, rtol=1e-6)
    assert same.sum() >= 8
    np.testing.assert_allclose(trf.labels[same], lm.labels[same],
                               atol=1e-3 * model.scaling_.scales.max())
    # log-likelihood: the multivariate normal of covariance diag(noise + s^2) + U U^T
    star = test[0]
    good = (star[1] > 0) & model.pixel_mask_
    cov = (np.diag(1 / star[1][good] + model.s2_[good])
           + model.error_factors_[good] @ model.error_factors_[good].T)
    expected = multivariate_normal(model.predict(lm.labels[:1])[0][good], cov).logpdf(
        star[0][good])
    np.testing.assert_allclose(model.log_likelihood(lm.labels[:1], test[:1])[0], expected,
                               rtol=1e-9)


def test_model_file_keeps_terms_censoring_and_factors(tmp_path, real_set):
    X, y = real_set.X, real_set.table[list(NAMES)].to_numpy(float)
    mask = np.zeros(100, bool)
    mask[::3] = True
    model = Cannon(NAMES, terms="TEFF^3 TEFF^2 TEFF LOGG PARAM_M_H TEFF*LOGG",
                   censors={"PARAM_M_H": mask}, n_error_factors=4).fit(y, X)
    path = model.save(tmp_path / "model.h5")
    loaded = Cannon.load(path)
    assert loaded.terms == model.terms and loaded.n_error_factors == 4
    np.testing.assert_array_equal(loaded.censors["PARAM_M_H"], mask)
    np.testing.assert_array_equal(loaded.error_factors_, model.error_factors_)
    np.testing.assert_array_equal(loaded.predict(y[:5]), model.predict(y[:5]))
    np.testing.assert_allclose(loaded.infer_labels(X[:5]).labels,
                               model.infer_labels(X[:5]).labels, rtol=1e-4)


def test_loading_checks_meaning_behind_a_valid_checksum(tmp_path, real_set):
    """Content re-checksummed after an edit (a forged file) is still refused when it makes no
    sense: repeated label names."""
    import h5py

    from skcannon.integrity import content_digest, seal_file

    X, y = real_set.X, real_set.table[list(NAMES)].to_numpy(float)
    path = Cannon(NAMES, n_error_factors=0).fit(y, X).save(tmp_path / "model.h5")
    with h5py.File(path, "r+") as h5:
        h5.attrs["label_names"] = '["TEFF", "TEFF", "PARAM_M_H"]'
        arrays = {name: h5[name][()] for name in h5}
        h5.attrs["checksum"] = content_digest(dict(h5.attrs), arrays)
    seal_file(path)                                   # the whole-file seal forged too
    with pytest.raises(BadFileError, match="not distinct"):
        Cannon.load(path)


def test_metadata_edits_are_caught_by_the_checksum(tmp_path, real_set):
    import h5py

    X, y = real_set.X, real_set.table[list(NAMES)].to_numpy(float)
    path = Cannon(NAMES, n_error_factors=0).fit(y, X).save(tmp_path / "model.h5")
    with h5py.File(path, "r+") as h5:
        h5.attrs["label_names"] = '["LOGG", "TEFF", "PARAM_M_H"]'
    with pytest.raises(BadFileError, match="checksum"):
        Cannon.load(path)


def test_cleaning_drops_planted_bad_labels(simulated_set):
    from skcannon.apogee.reference import REFERENCE_LABELS

    labels, X, _ = simulated_set
    y = labels[list(REFERENCE_LABELS)].to_numpy(float)[:300]
    X = X[:300]
    rng = np.random.default_rng(11)
    planted = rng.choice(len(y), 12, replace=False)
    bad = y.copy()
    bad[planted, 0] += rng.choice([-1, 1], 12) * 300         # Teff off by 300 K
    model = Cannon(REFERENCE_LABELS, clean_k=4.0).fit(bad, X)
    dropped = set(model.dropped_["row"])
    assert set(planted) <= dropped
    assert len(dropped) < 12 + 0.05 * len(y)
    assert model.n_training_stars_ == len(y) - len(dropped)
    reasons = model.dropped_.set_index("row").loc[planted, "reason"]
    assert reasons.str.contains(f"{REFERENCE_LABELS[0]} off by").all()
    kept = Cannon(REFERENCE_LABELS).fit(bad, X)
    assert kept.dropped_.empty and kept.n_training_stars_ == len(y)


def test_labelled_arrays_of_any_length(real_set, tmp_path):
    from skcannon.data import load_labelled_arrays

    assert real_set.X.shape == (336, 3, 100)
    raw = np.load(real_set.source)
    np.testing.assert_array_equal(real_set.X[:, 1] == 0, raw["flux_err"] >= 0.5)
    assert {"TEFF", "LOGG", "PARAM_M_H", "star_index"} <= set(real_set.table.columns)
    bad = tmp_path / "bad.npz"
    np.savez(bad, flux=np.ones((3, 10)))
    with pytest.raises(BadFileError, match="flux_err"):
        load_labelled_arrays(bad)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(BadFileError, match="cannot be read"):
        load_labelled_arrays(tmp_path / "junk.npz")


def test_repeated_kfold_gives_every_estimator_the_same_folds(real_set):
    from sklearn.dummy import DummyRegressor

    from skcannon.evaluation import repeated_kfold

    X, y = real_set.X, real_set.table[list(NAMES)].to_numpy(float)
    first = repeated_kfold(DummyRegressor(), X, y, NAMES, n_repeats=3)
    second = repeated_kfold(DummyRegressor(), X, y, NAMES, n_repeats=3)
    np.testing.assert_array_equal(first.predictions, second.predictions)
    assert first.predictions.shape == (3, 336, 3)
    assert not np.array_equal(first.predictions[0], first.predictions[1])
    assert list(first.summary.label) == list(NAMES)
    assert (first.summary.robust_scatter_sd > 0).all()
