"""Training: recovery of known coefficients and scatter, agreement with an independent per-pixel
computation, and optimality of the chosen s^2."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from skcannon.model import PolynomialVectorizer, train_pixels
from skcannon.model.training import DEFAULT_SCATTER_GRID


def reference_profile(design, flux, ivar, s2):
    """Plain per-pixel profile log-likelihood (independent of skcannon.model.training)."""
    good = ivar > 0
    x, f, iv = design[good], flux[good], ivar[good]
    w = iv / (1 + iv * s2)
    theta = np.linalg.lstsq(x * np.sqrt(w)[:, None], f * np.sqrt(w), rcond=None)[0]
    r = f - x @ theta
    return -0.5 * np.sum(w * r * r - np.log(w)), theta


def reference_fit(design, flux, ivar):
    """Scalar optimizer over ln s^2 (bounded, tight), plus s^2 = 0."""
    result = minimize_scalar(lambda u: -reference_profile(design, flux, ivar, np.exp(u))[0],
                             bounds=(np.log(1e-14), np.log(10.0)), method="bounded",
                             options={"xatol": 1e-12, "maxiter": 500})
    s2 = np.exp(result.x)
    if reference_profile(design, flux, ivar, 0.0)[0] >= -result.fun:
        s2 = 0.0
    return s2, reference_profile(design, flux, ivar, s2)


@pytest.fixture(scope="module")
def known_model():
    """Spectra from a known quadratic model with known per-pixel scatter and per-star noise."""
    rng = np.random.default_rng(0)
    n_stars, n_pixels, n_labels = 800, 400, 5
    labels = rng.normal(size=(n_stars, n_labels))
    design = PolynomialVectorizer(n_labels).design_matrix(labels)
    theta = rng.normal(0, 0.02, (n_pixels, design.shape[1]))
    theta[:, 0] = rng.uniform(0.7, 1.0, n_pixels)
    s_true = 10 ** rng.uniform(-2.3, -1.3, n_pixels)          # 0.005 - 0.05
    snr = rng.uniform(50, 250, n_stars)                      # realistic per-star noise
    sigma = np.outer(1 / snr, rng.uniform(0.8, 1.5, n_pixels))
    flux = design @ theta.T + rng.normal(size=sigma.shape) * np.sqrt(sigma**2 + s_true**2)
    ivar = 1 / sigma**2
    ivar[rng.random(ivar.shape) < 0.03] = 0                  # some masked pixels
    return design, flux, ivar, theta, s_true**2


def test_recovers_theta_and_scatter_within_statistical_error(known_model):
    design, flux, ivar, theta, s2_true = known_model
    result = train_pixels(design, flux, ivar)
    # theta: pulls against the formal error from the normal matrix at the solution
    pulls = []
    for p in range(0, flux.shape[1], 20):
        w = ivar[:, p] / (1 + ivar[:, p] * result.s2[p])
        cov = np.linalg.inv(design.T @ (w[:, None] * design))
        pulls.append((result.theta[p] - theta[p]) / np.sqrt(np.diag(cov)))
    pulls = np.concatenate(pulls)
    assert abs(np.mean(pulls)) < 0.1 and 0.85 < np.std(pulls) < 1.15
    # s: each pixel's estimate has a relative error ~ 1/sqrt(2 n_eff); the median ratio is
    # within a few percent of 1 and the spread is as expected
    ratio = np.sqrt(result.s2) / np.sqrt(s2_true)
    assert abs(np.median(ratio) - 1) < 0.03
    assert np.percentile(np.abs(ratio - 1), 90) < 0.25


def test_equals_independent_per_pixel_reference(known_model):
    design, flux, ivar, _, _ = known_model
    result = train_pixels(design, flux, ivar)
    for p in (0, 7, 123, 399):
        s2_ref, (lnl_ref, theta_ref) = reference_fit(design, flux[:, p], ivar[:, p])
        np.testing.assert_allclose(result.s2[p], s2_ref, rtol=1e-6)
        np.testing.assert_allclose(result.theta[p], theta_ref, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(result.log_likelihood[p], lnl_ref, rtol=1e-12)


def test_chosen_scatter_maximizes_likelihood(known_model):
    design, flux, ivar, _, _ = known_model
    result = train_pixels(design, flux, ivar)
    for p in range(0, flux.shape[1], 37):
        best = reference_profile(design, flux[:, p], ivar[:, p], result.s2[p])[0]
        for s2 in DEFAULT_SCATTER_GRID:
            assert best >= reference_profile(design, flux[:, p], ivar[:, p], s2)[0] - 1e-9
        for factor in (0.999, 1.001, 0.99, 1.01):
            assert best >= reference_profile(design, flux[:, p], ivar[:, p],
                                             result.s2[p] * factor)[0] - 1e-9
    # the maximum is never on the grid's upper edge
    assert result.grid_index.max() < len(DEFAULT_SCATTER_GRID) - 1


def test_scatter_zero_when_data_are_pure_noise():
    rng = np.random.default_rng(3)
    labels = rng.normal(size=(300, 2))
    design = PolynomialVectorizer(2).design_matrix(labels)
    flux = 1 + rng.normal(size=(300, 50)) * 0.01 * 0.8      # noise smaller than stated
    result = train_pixels(design, flux, np.full(flux.shape, 1e4))
    assert np.mean(result.s2 == 0) > 0.9


def test_pixels_masked_in_most_stars_are_excluded_not_nan(known_model):
    design, flux, ivar, _, _ = known_model
    ivar = ivar.copy()
    ivar[:600, :10] = 0
    result = train_pixels(design, flux, ivar)
    assert not result.pixel_ok[:10].any() and result.pixel_ok[10:].all()
    assert np.isfinite(result.theta).all() and np.isfinite(result.s2).all()
    assert np.all(result.theta[:10, 0] == 1) and np.all(result.theta[:10, 1:] == 0)


def test_inputs_not_modified(known_model):
    design, flux, ivar, _, _ = known_model
    before = flux.copy(), ivar.copy()
    train_pixels(design, flux, ivar)
    np.testing.assert_array_equal(flux, before[0])
    np.testing.assert_array_equal(ivar, before[1])


def test_l1_regularization_shrinks_coefficients(known_model):
    design, flux, ivar, _, _ = known_model
    plain = train_pixels(design, flux[:, :40], ivar[:, :40])
    sparse = train_pixels(design, flux[:, :40], ivar[:, :40], regularization=1e4)
    assert np.abs(sparse.theta[:, 1:]).sum() < 0.9 * np.abs(plain.theta[:, 1:]).sum()


def batched_reference_profile(design, flux, ivar, s2):
    """Profile lnL of every pixel at per-pixel s2 the plain way: all k x k products, one solve
    per pixel (independent of skcannon.model.training)."""
    good = ivar > 0
    w = np.where(good, ivar / (1 + ivar * s2), 0.0)
    k = design.shape[1]
    outer = (design[:, :, None] * design[:, None, :]).reshape(len(design), k * k)
    A = (w.T @ outer).reshape(-1, k, k)
    theta = np.linalg.solve(A, ((w * flux).T @ design)[..., None])[..., 0]
    r = flux - design @ theta.T
    log_w = np.where(good, np.log(np.where(good, w, 1.0)), 0.0)
    return -0.5 * np.sum(w * r * r - log_w, axis=0)


def test_every_pixel_of_realistic_spectra_is_at_its_maximum(simulated_set):
    """Spectra from the published model at real labels, real error shapes and masks: at every
    trained pixel the chosen s^2 beats each grid point and small perturbations."""
    labels, X, _ = simulated_set
    from skcannon.apogee.reference import REFERENCE_LABELS

    values = labels[list(REFERENCE_LABELS)].to_numpy()
    design = PolynomialVectorizer(4).design_matrix((values - values.mean(0)) / values.std(0))
    flux, ivar = X[:, 0], X[:, 1]
    result = train_pixels(design, flux, ivar)
    ok = result.pixel_ok
    assert ok.sum() > 6500
    f = np.where(ivar[:, ok] > 0, flux[:, ok], 0.0)
    iv = ivar[:, ok]
    best = batched_reference_profile(design, f, iv, result.s2[ok])
    np.testing.assert_allclose(result.log_likelihood[ok], best, rtol=1e-12)
    for s2 in DEFAULT_SCATTER_GRID:
        assert np.all(best >= batched_reference_profile(design, f, iv, np.full(ok.sum(), s2))
                      - 1e-9)
    for factor in (0.999, 1.001, 0.99, 1.01):
        other = batched_reference_profile(design, f, iv, result.s2[ok] * factor)
        assert np.all(best >= other - 1e-9), np.flatnonzero(best < other - 1e-9)


def fixed_residual_inputs(known_model):
    """Squared residuals of an unweighted fit and noise variances, masked entries neutralized
    (r2 = 0, var = 1), as the fixed-residual functions take them; plus the good-pixel mask."""
    design, flux, ivar, _, _ = known_model
    good = ivar > 0
    theta = np.linalg.lstsq(design, flux, rcond=None)[0]
    r2 = np.where(good, (flux - design @ theta) ** 2, 0.0)
    var = np.where(good, 1 / np.where(good, ivar, 1.0), 1.0)
    return r2, var, (~good).sum(axis=0), good


def test_converged_newton_stays_put(known_model):
    """Once converged, a step of ~0 is taken, not a bisection of the bracket."""
    from skcannon.model.training import fixed_residual_newton

    r2, var, n_masked, _ = fixed_residual_inputs(known_model)
    flux, ivar = known_model[1], known_model[2]
    typical_ivar = ivar.mean(axis=0)
    lower, upper = np.full(flux.shape[1], np.log(1e-8)), np.full(flux.shape[1], np.log(1.0))
    u = fixed_residual_newton(r2, var, n_masked, np.full(flux.shape[1], np.log(1e-4)), lower,
                              upper, typical_ivar, steps=30)
    again = fixed_residual_newton(r2, var, n_masked, u, lower, upper, typical_ivar, steps=5)
    np.testing.assert_allclose(again, u, atol=1e-9)


def test_normal_matrices_from_distinct_products():
    from skcannon.model.training import NormalMatrixPlan, PixelSystems

    rng = np.random.default_rng(5)
    design = PolynomialVectorizer(5).design_matrix(rng.normal(size=(200, 5)))
    plan = NormalMatrixPlan(design)
    assert plan.products.shape == (200, 126)           # monomials of degree <= 4 in 5 labels
    w = rng.uniform(0, 1e4, (200, 30))
    direct = np.einsum("np,ni,nj->pij", w, design, design)
    systems = PixelSystems(design, np.ones((200, 30)), w)
    # to rounding on the scale of the entries (sums of mixed-sign monomials cancel)
    np.testing.assert_allclose(systems.normal_matrices(w), direct, rtol=1e-12,
                               atol=1e-13 * np.abs(direct).max())
    # columns that only look alike (equal to 1e-10) are not merged
    close = np.column_stack([np.ones(200), design[:, 1], design[:, 1] + 1e-10 * design[:, 2]])
    assert NormalMatrixPlan(close).products.shape[1] == 6
    w = rng.uniform(0, 1, (200, 3))
    np.testing.assert_allclose(PixelSystems(close, np.ones((200, 3)), w).normal_matrices(w),
                               np.einsum("np,ni,nj->pij", w, close, close), rtol=1e-13)


def test_grid_bound_never_hides_the_maximum(known_model):
    from skcannon.model.training import fixed_residual_grid

    r2, var, n_masked, good = fixed_residual_inputs(known_model)
    # pixels with a large scatter too: their maximum is high on the grid
    r2[:, :50] *= 1e4
    grid = DEFAULT_SCATTER_GRID
    pruned = fixed_residual_grid(r2.astype(np.float32), var.astype(np.float32), n_masked, grid)
    full = np.array([-0.5 * np.sum(np.where(good, r2 / (var + s2) + np.log(var + s2), 0.0),
                                   axis=0) for s2 in grid])
    np.testing.assert_array_equal(np.argmax(pruned, axis=0), np.argmax(full, axis=0))
    skipped = ~np.isfinite(pruned)
    assert skipped.sum() > 0.3 * skipped.size          # the bound does rule points out
    assert np.all(full[skipped] < np.broadcast_to(full.max(axis=0), full.shape)[skipped])
    np.testing.assert_allclose(pruned[~skipped], full[~skipped], rtol=1e-6, atol=1e-3)  # float32


def test_results_do_not_depend_on_blocks_or_threads(known_model):
    design, flux, ivar, _, _ = known_model
    one = train_pixels(design, flux, ivar, n_jobs=1, block_pixels=1000)
    many = train_pixels(design, flux, ivar, n_jobs=2, block_pixels=37)
    np.testing.assert_allclose(many.s2, one.s2, rtol=1e-6)
    np.testing.assert_allclose(many.theta, one.theta, rtol=1e-6, atol=1e-12)
    np.testing.assert_array_equal(many.grid_index, one.grid_index)


def test_progress_reports_every_pixel_once(known_model):
    design, flux, ivar, _, _ = known_model
    ivar = ivar.copy()
    ivar[:600, :10] = 0                                   # excluded pixels count as done too
    done = []
    train_pixels(design, flux, ivar, n_jobs=2, block_pixels=64, progress=done.append)
    assert sum(done) == flux.shape[1] and len(done) == 7   # 400 pixels in blocks of 64
