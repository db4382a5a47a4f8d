"""Training the Cannon: per-pixel coefficients theta and intrinsic scatter s^2, all pixels at once.

For pixel p and star n with design row x_n (the vectorized scaled labels), flux f_np and inverse
variance ivar_np, the model is f_np = theta_p . x_n + noise of variance 1/ivar_np + s_p^2.
For fixed s_p^2, theta_p is weighted least squares with weights w_np = ivar/(1 + ivar s^2):

    A_p(s^2) theta_p = b_p,   A_p = sum_n w_np x_n x_n^T,   b_p = sum_n w_np f_np x_n.

s_p^2 maximizes the profile log-likelihood

    lnL_p(s^2) = -1/2 sum_n [ w_np r_np^2 - ln w_np ],   r_np = f_np - theta_p(s^2) . x_n

over stars with ivar > 0. Its derivatives follow from the envelope theorem (dlnL/dtheta = 0):

    dlnL/ds^2   = 1/2 sum_n (w^2 r^2 - w)
    d2lnL/ds^4  = sum_n w^2 (1/2 - w r^2) + g^T A^-1 g,    g = sum_n w^2 r x_n.

Strategy, for cache-sized blocks of pixels at once (threads take blocks as they free up):

1. theta at a starting s^2; residuals r.
2. Grid: for those fixed residuals the likelihood in s^2 costs only element-wise work, so it is
   evaluated (in float32) on a wide grid of s^2; the best grid point of every pixel brackets its
   global maximum between the neighbouring grid points. Grid points above the maximum are skipped
   where an exact bound rules them out (over good stars, F(s^2) <= -n_good/2 ln s^2, falling with
   s^2: once it is below the best value found, no larger s^2 can be better). Newton steps on this
   fixed-residual likelihood give the starting point of the exact refinement.
3. Refinement on the exact profile: at each exact evaluation (theta re-solved in float64,
   derivatives above), the profile is, around the current s_k^2,

       lnL(u) = F_k(u) + D(u),   D(u) ~ 1/2 s_k^4 g^T A^-1 g (u - u_k)^2,   u = ln s^2,

   where F_k is the fixed-residual likelihood with the current residuals (element-wise, carries
   the strong non-linearity in s^2) and D >= 0 the gain from re-fitting theta (zero with zero
   slope at u_k: envelope theorem; its curvature there is s_k^4 g^T A^-1 g, and it is close to
   quadratic in u, not in s^2, over the steps taken). Newton steps on this local model
   (element-wise work only; the first is the exact Newton step) lead to the next exact
   evaluation, kept inside the bracket of the exact derivative's sign changes. A pixel has
   converged when its exact Newton step delta is tiny (|delta| <= sqrt(tolerance / 10)): it
   takes that last step, whose error is O(delta^2), with theta, lnL and chi^2 carried along by
   their derivatives (dtheta/du = -s^2 A^-1 g; lnL to second order, error O(delta^3); chi^2 to
   first order by the envelope theorem), or has a step below the tolerance itself. Typically two
   exact evaluations suffice.

A_p for all pixels of a block is one GEMM: W^T (n_stars x n_products) with the distinct
products x_i x_j of design columns (a quadratic model in L labels has only the monomials of degree
<= 4 among them: 126 instead of 231 for 5 labels), then one gather into the k x k matrices.

L1 regularization (Casey et al. 2016): ``regularization`` Lambda adds Lambda * sum_{j>=1} |theta_j|
to -lnL, solved by iteratively reweighted ridge (Lambda / |theta_j| on the diagonal).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from skcannon.inference.threads import resolve_n_jobs

#: Training threads at most when ``n_jobs`` is None (the cap the package has always used).
MAX_TRAINING_THREADS = 4
#: Default s^2 grid: 0, and s^2 from 1e-7 to 10 (s from 3e-4 to 3 in normalized-flux units) in
#: steps of a factor 10. The profile is broad in ln s^2, so this brackets its maximum; Newton
#: steps then find it exactly, also below the first positive value (s below 3e-4 is far below
#: the noise of any APOGEE spectrum).
DEFAULT_SCATTER_GRID = np.concatenate([[0.0], 10.0 ** np.arange(-7.0, 1.5, 1.0)])
#: Exact profile evaluations (each followed by Newton steps on the local model) at most.
NEWTON_STEPS = 6
#: A pixel is trained only where at least this many stars per model term have it unmasked,
#: so a training set needs this many stars per term at the very least.
MIN_STARS_PER_TERM = 2
#: s^2 of the first theta, whose residuals give the grid (s = 0.01: a typical intrinsic scatter).
START_S2 = 1e-4
#: Newton steps on the fixed-residual likelihood after the grid, and on the local model after
#: each exact evaluation (at most; they stop once every step is below the tolerance).
FIXED_RESIDUAL_STEPS = 8
MODEL_STEPS = 8
#: Tolerance in ln s^2 of the steps after the grid: their result is only as good as the starting
#: theta's residuals (off by ~1e-2 in ln s^2), so converging further would buy nothing.
START_TOLERANCE = 3e-2
#: Pixels per block: a block's work arrays (n_stars x BLOCK_PIXELS) stay in the CPU caches.
BLOCK_PIXELS = 256
#: IRLS iterations for the L1 penalty.
L1_ITERATIONS = 6
#: Floor of |theta| in the IRLS weights.
L1_EPSILON = 1e-8


@dataclass
class TrainingResult:
    """Arrays learned for every pixel (excluded pixels: theta = [1, 0, ...], s2 = 0).

    Attributes
    ----------
    theta : ndarray, shape (n_pixels, n_terms)
    s2 : ndarray, shape (n_pixels,)
    pixel_ok : ndarray of bool, shape (n_pixels,)
        False where too few stars have a usable pixel (excluded from training and fitting).
    log_likelihood : ndarray, shape (n_pixels,)
        Profile log-likelihood at the chosen s^2 (0 for excluded pixels).
    grid_log_likelihood : ndarray, shape (n_grid, n_pixels)
        The fixed-residual likelihood (residuals of the starting theta) on the s^2 grid; -inf at
        grid points the bound ruled out without evaluating them (see the module docstring).
    grid_index : ndarray of int, shape (n_pixels,)
        Index of the best grid point.
    chi2, dof : ndarray, shape (n_pixels,)
        sum w r^2 at the solution, and good stars minus terms.
    """

    theta: np.ndarray
    s2: np.ndarray
    pixel_ok: np.ndarray
    log_likelihood: np.ndarray
    grid_log_likelihood: np.ndarray
    grid_index: np.ndarray
    chi2: np.ndarray
    dof: np.ndarray


class NormalMatrixPlan:
    """How to build the normal matrices of one design matrix from as few products as possible.

    Many products x_i x_j of design columns are equal (for polynomial terms, the same monomial
    arises from several pairs). ``products`` holds each distinct one once; ``gather`` maps every
    entry (i, j) of a k x k matrix to its column. Merging is verified numerically, so any design
    matrix works (columns that only look alike are kept apart).

    Attributes
    ----------
    products : ndarray, shape (n_stars, n_distinct)
    gather : ndarray of int, shape (n_terms * n_terms,)
    """

    def __init__(self, design: np.ndarray) -> None:
        k = design.shape[1]
        iu, ju = np.triu_indices(k)
        pairs = design[:, iu] * design[:, ju]                       # (n, k(k+1)/2)
        scale = np.maximum(np.abs(pairs).max(axis=0), np.finfo(float).tiny)
        _, first, inverse = np.unique(np.round(pairs / scale, 9), axis=1, return_index=True,
                                      return_inverse=True)
        representative = first[inverse.ravel()]
        same = np.all(np.abs(pairs - pairs[:, representative]) <= 1e-12 * scale, axis=0)
        representative = np.where(same, representative, np.arange(pairs.shape[1]))
        kept, column = np.unique(representative, return_inverse=True)
        self.products = np.ascontiguousarray(pairs[:, kept])
        full = np.empty((k, k), dtype=int)
        full[iu, ju] = column.ravel()
        full[ju, iu] = column.ravel()
        self.gather = full.ravel()


class PixelSystems:
    """Batched weighted least squares of a block of pixels on one design matrix.

    Holds (n_stars, n_pixels) work buffers so that an evaluation allocates no large arrays.
    """

    def __init__(self, design: np.ndarray, flux: np.ndarray, ivar: np.ndarray,
                 regularization: float = 0.0, plan: NormalMatrixPlan | None = None) -> None:
        self.design = np.ascontiguousarray(design, dtype=float)          # (n, k)
        self.plan = NormalMatrixPlan(self.design) if plan is None else plan
        self.regularization = float(regularization)
        self._set_pixels(np.asarray(flux, dtype=float), np.asarray(ivar, dtype=float))

    def _set_pixels(self, flux: np.ndarray, ivar: np.ndarray) -> None:
        self.flux, self.ivar = flux, ivar                                 # (n, p)
        self.good = ivar > 0
        self._w, self._r, self._t, self._r2 = (np.empty_like(flux) for _ in range(4))
        np.log(ivar, out=self._t, where=self.good)
        self._t[~self.good] = 0.0
        self.sum_log_ivar = self._t.sum(axis=0)

    def columns(self, pixels: np.ndarray) -> PixelSystems:
        """The systems of a subset of pixels (shares the design; copies the pixel columns)."""
        sub = object.__new__(PixelSystems)
        sub.design, sub.plan, sub.regularization = self.design, self.plan, self.regularization
        sub._set_pixels(np.ascontiguousarray(self.flux[:, pixels]),
                        np.ascontiguousarray(self.ivar[:, pixels]))
        return sub

    def weights(self, s2: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """w = ivar / (1 + ivar s^2), shape (n, p); s2 broadcasts over pixels."""
        out = np.empty_like(self.ivar) if out is None else out
        np.multiply(self.ivar, s2, out=out)
        out += 1.0
        np.divide(self.ivar, out, out=out)
        return out

    def normal_matrices(self, weights: np.ndarray) -> np.ndarray:
        """A_p = sum_n w_np x_n x_n^T for all pixels, shape (p, k, k)."""
        k = self.design.shape[1]
        flat = weights.T @ self.plan.products           # (p, n_distinct): one GEMM
        return flat[:, self.plan.gather].reshape(-1, k, k)

    def solve(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """theta (p, k) and the (regularized) normal matrices (p, k, k)."""
        A = self.normal_matrices(weights)
        np.multiply(weights, self.flux, out=self._t)
        b = self._t.T @ self.design                     # (p, k)
        theta = np.linalg.solve(A, b[..., None])[..., 0]
        if self.regularization > 0:
            base = A
            diagonal = np.arange(A.shape[1])
            for _ in range(L1_ITERATIONS):
                penalty = self.regularization / np.maximum(np.abs(theta), L1_EPSILON)
                penalty[:, 0] = 0.0                     # the constant term is not penalized
                A = base.copy()
                A[:, diagonal, diagonal] += penalty
                theta = np.linalg.solve(A, b[..., None])[..., 0]
        return theta, A

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        """f - x . theta into the residual buffer, shape (n, p) (masked entries: anything)."""
        np.matmul(self.design, theta.T, out=self._r)
        np.subtract(self.flux, self._r, out=self._r)
        return self._r

    def profile(self, s2: np.ndarray, derivatives: bool = False) -> dict:
        """Profile log-likelihood (and derivatives in s^2) at per-pixel s2, shape (p,).

        With ``derivatives``, also ``r2`` (squared residuals, 0 where masked; a work buffer,
        valid until the next call), ``curvature`` (g^T A^-1 g, the part of the second
        derivative that comes from re-fitting theta), and the derivatives in u = ln s^2 of
        theta (``dtheta_du``, shape (p, k)) and of chi^2 (``dchi2_du``; both without the L1
        penalty's own dependence).
        """
        W, T, R2 = self._w, self._t, self._r2
        self.weights(s2, out=W)
        theta, A = self.solve(W)
        R = self.residuals(theta)
        np.multiply(R, R, out=R2)
        chi2 = np.einsum("np,np->p", W, R2)             # sum w r^2 (masked: w = 0)
        np.multiply(self.ivar, s2, out=T)
        np.log1p(T, out=T)                              # ln(1 + ivar s^2), 0 where masked
        log_w = self.sum_log_ivar - T.sum(axis=0)
        out = {"theta": theta, "chi2": chi2, "lnL": -0.5 * (chi2 - log_w)}
        if self.regularization > 0:
            out["lnL"] = out["lnL"] - self.regularization * np.abs(theta[:, 1:]).sum(axis=1)
        if derivatives:
            np.multiply(W, R, out=R)                    # R now holds w r
            sum_w2r2 = np.einsum("np,np->p", R, R)      # sum w^2 r^2
            out["d1"] = 0.5 * (sum_w2r2 - W.sum(axis=0))
            np.multiply(W, R, out=T)                    # T = w^2 r
            g = T.T @ self.design                       # (p, k)
            w3r2 = np.einsum("np,np->p", T, R)          # sum w^3 r^2
            w2 = np.einsum("np,np->p", W, W)
            Ainv_g = np.linalg.solve(A, g[..., None])[..., 0]
            out["curvature"] = np.einsum("pk,pk->p", g, Ainv_g)
            out["dtheta_du"] = -s2[:, None] * Ainv_g    # dtheta/ds^2 = -A^-1 g
            out["dchi2_du"] = -s2 * sum_w2r2           # envelope: d(sum w r^2)/ds^2
            out["d2"] = 0.5 * w2 - w3r2 + out["curvature"]
            R2[~self.good] = 0.0
            out["r2"] = R2
        return out


def fixed_residual_grid(r2: np.ndarray, var: np.ndarray, n_masked: np.ndarray,
                        grid: np.ndarray) -> np.ndarray:
    """lnL on the s^2 grid for fixed residuals, shape (n_grid, n_pixels).

    ``r2`` squared residuals and ``var`` noise variances, float32, shape (n_stars, n_pixels),
    with masked entries neutralized (r2 = 0, var = 1; their ln(1 + s^2) is subtracted using
    ``n_masked`` per pixel). Sums are accumulated in float64. ``grid`` is increasing; a grid
    point is evaluated only for pixels where the bound -n_good/2 ln s^2 (no smaller than lnL
    there or at any larger s^2) reaches the best value so far; elsewhere it is -inf.
    """
    n_good = r2.shape[0] - n_masked
    out = np.full((grid.size, r2.shape[1]), -np.inf)
    best = np.full(r2.shape[1], -np.inf)
    columns = np.arange(r2.shape[1])            # pixels the bound has not ruled out
    for i, value in enumerate(grid):
        if value > 0:
            keep = -0.5 * n_good[columns] * np.log(value) >= best[columns]
            if not keep.any():
                break
            if not keep.all():
                columns = columns[keep]
                r2, var = r2[:, keep], var[:, keep]
        total = np.add(var, np.float32(value))
        log_det = np.log(total).sum(axis=0, dtype=np.float64) - \
            n_masked[columns] * np.log1p(value)
        np.reciprocal(total, out=total)
        chi2 = np.einsum("np,np->p", r2, total, dtype=np.float64)
        out[i, columns] = -0.5 * (chi2 + log_det)
        best[columns] = np.maximum(best[columns], out[i, columns])
    return out


def fixed_residual_newton(r2: np.ndarray, var: np.ndarray, n_masked: np.ndarray,
                          u: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                          typical_ivar: np.ndarray, steps: int = FIXED_RESIDUAL_STEPS,
                          curvature: np.ndarray | None = None, center: np.ndarray | None = None,
                          tolerance: float = 0.0) -> np.ndarray:
    """Safeguarded Newton steps on u = ln s^2 for fixed residuals (element-wise work only).

    Maximizes F(s^2) = -1/2 sum_n [r^2 / t + ln t], t = var + s^2, arrays as in
    :func:`fixed_residual_grid` (float32 or float64), plus, when ``curvature`` c is given,
    1/2 c (u - center)^2 (the local model of the exact profile, see the module docstring).
    Stops after ``steps`` or once every step is below ``tolerance``. Returns the new u, shape
    (n_pixels,).
    """
    u, lower, upper = (np.array(a, dtype=float) for a in (u, lower, upper))
    columns = np.arange(u.size)               # pixels still moving, in the arrays below
    for _ in range(steps):
        s2 = np.exp(u[columns])
        q = np.add(var, s2.astype(var.dtype))
        np.reciprocal(q, out=q)                          # 1/t
        masked_q = n_masked[columns] / (1.0 + s2)        # their 1/t, removed from the sums
        sum_q = q.sum(axis=0, dtype=np.float64) - masked_q
        r2q = np.multiply(r2, q)
        sum_r2q2 = np.einsum("np,np->p", r2q, q, dtype=np.float64)
        q *= q
        sum_q2 = q.sum(axis=0, dtype=np.float64) - masked_q / (1.0 + s2)
        sum_r2q3 = np.einsum("np,np->p", r2q, q, dtype=np.float64)
        d1 = 0.5 * (sum_r2q2 - sum_q)                    # in s^2
        d2 = 0.5 * sum_q2 - sum_r2q3
        d1u = s2 * d1                                    # in u
        d2u = s2 * s2 * d2 + d1u
        if curvature is not None:
            d1u = d1u + curvature[columns] * (u[columns] - center[columns])
            d2u = d2u + curvature[columns]
            d1 = d1u / s2
            d2 = (d2u - d1u) / (s2 * s2)
        lower[columns] = np.where(d1u > 0, u[columns], lower[columns])
        upper[columns] = np.where(d1u < 0, u[columns], upper[columns])
        new = _safeguarded_step(u[columns], s2, d1u, d2u, d1, d2, lower[columns],
                                upper[columns], s2 * typical_ivar[columns] < 1.0)
        moving = np.abs(new - u[columns]) > tolerance
        u[columns] = new
        if not moving.any():
            break
        if moving.mean() < 0.5:                          # carry on with the moving pixels only
            columns = columns[moving]
            r2, var = r2[:, moving], var[:, moving]
    return u


def train_pixels(design: np.ndarray, flux: np.ndarray, ivar: np.ndarray, *,
                 scatter_grid: np.ndarray | None = None, regularization: float = 0.0,
                 min_good_fraction: float = 0.5, newton_steps: int = NEWTON_STEPS,
                 tolerance: float = 1e-7, n_jobs: int | None = None,
                 block_pixels: int = BLOCK_PIXELS,
                 progress: Callable[[int], object] | None = None) -> TrainingResult:
    """Learn theta and s^2 for every pixel.

    Parameters
    ----------
    design : ndarray, shape (n_stars, n_terms)  the vectorized scaled labels
    flux, ivar : ndarray, shape (n_stars, n_pixels)
        Normalized flux and inverse variance (0 = masked). Never modified.
    scatter_grid : ndarray, shape (n_grid,), default=None
        Candidate s^2 values, increasing from 0, at least 3 (None: DEFAULT_SCATTER_GRID).
    regularization : float, default=0.0  L1 strength Lambda (0: the classic Cannon)
    min_good_fraction : float, default=0.5
        Pixels usable in fewer than this fraction of the stars (or 2 x n_terms) are excluded.
    newton_steps : int, default=NEWTON_STEPS
        Exact profile evaluations after the grid, at most.
    tolerance : float, default=1e-7
        A pixel has converged when its exact Newton step in ln s^2 is below this.
    n_jobs : int or None, default=None
        Threads over blocks of pixels (None: :func:`~skcannon.inference.threads.resolve_n_jobs`).
    block_pixels : int, default=BLOCK_PIXELS  pixels per block (results alike within tolerance)
    progress : callable or None, default=None
        Called (from worker threads) with each finished block's pixel count (e.g. ``tqdm.update``).

    Returns
    -------
    TrainingResult
        theta, s^2, likelihoods and chi^2 of every pixel (excluded ones: theta [1, 0, ...]).

    Raises
    ------
    ValueError
        A bad ``scatter_grid``, or ``flux`` and ``ivar`` not both (n_stars, n_pixels).
    """
    grid, design = _checked_inputs(design, flux, ivar, scatter_grid)
    (n_stars, n_terms), n_pixels = design.shape, flux.shape[1]
    result = TrainingResult(
        theta=np.hstack([np.ones((n_pixels, 1)), np.zeros((n_pixels, n_terms - 1))]),
        s2=np.zeros(n_pixels), pixel_ok=np.zeros(n_pixels, dtype=bool),
        log_likelihood=np.zeros(n_pixels), grid_log_likelihood=np.zeros((grid.size, n_pixels)),
        grid_index=np.zeros(n_pixels, dtype=int), chi2=np.zeros(n_pixels),
        dof=np.zeros(n_pixels, dtype=int))
    options = {"min_good": max(min_good_fraction * n_stars, MIN_STARS_PER_TERM * n_terms),
               "grid": grid, "newton_steps": newton_steps, "tolerance": tolerance,
               "regularization": regularization, "plan": NormalMatrixPlan(design)}

    def work_and_report(block: slice) -> None:
        _train_block(block, design, flux, ivar, result, **options)
        if progress is not None:
            progress(block.stop - block.start)

    blocks = [slice(a, min(a + block_pixels, n_pixels)) for a in range(0, n_pixels,
                                                                          max(block_pixels, 1))]
    n_jobs = resolve_n_jobs(n_jobs, cap=MAX_TRAINING_THREADS)
    _run_blocks(work_and_report, blocks, min(n_jobs, len(blocks)))
    return result


def _checked_inputs(design: np.ndarray, flux: np.ndarray, ivar: np.ndarray,
                    scatter_grid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The s^2 grid (default :data:`DEFAULT_SCATTER_GRID`) and the design matrix (contiguous
    floats) of :func:`train_pixels`, its inputs checked.

    Raises
    ------
    ValueError
        A grid not increasing from 0 with >= 3 values, or flux/ivar not (n_stars, n_pixels).
    """
    grid = DEFAULT_SCATTER_GRID if scatter_grid is None else np.asarray(scatter_grid, float)
    if grid.ndim != 1 or grid.size < 3 or np.any(np.diff(grid) <= 0) or grid[0] != 0:
        raise ValueError("scatter_grid must be increasing, start at 0 and have >= 3 values")
    design = np.ascontiguousarray(design, dtype=float)
    n_stars = design.shape[0]
    if flux.shape != ivar.shape or flux.ndim != 2 or flux.shape[0] != n_stars:
        raise ValueError(f"flux {flux.shape} and ivar {ivar.shape} must both have shape "
                         f"({n_stars}, n_pixels)")
    return grid, design


def _train_block(block: slice, design: np.ndarray, flux: np.ndarray, ivar: np.ndarray,
                 result: TrainingResult, *, min_good: float, grid: np.ndarray,
                 newton_steps: int, tolerance: float, regularization: float,
                 plan: NormalMatrixPlan) -> None:
    """Clean, select and train the pixels ``block`` of ``flux``/``ivar`` (copies: the inputs
    stay untouched); fill ``result`` there (see :func:`train_pixels`)."""
    n_terms = design.shape[1]
    block_flux = np.array(flux[:, block], dtype=float)
    block_ivar = np.array(ivar[:, block], dtype=float)
    usable = (block_ivar > 0) & np.isfinite(block_ivar) & np.isfinite(block_flux)
    block_ivar[~usable] = 0.0
    block_flux[~usable] = 0.0
    n_good = usable.sum(axis=0)
    ok = n_good >= min_good
    index = np.arange(block.start, block.stop)
    result.pixel_ok[index] = ok
    result.dof[index] = n_good - n_terms
    if not ok.any():
        return
    if not ok.all():
        block_flux, block_ivar = block_flux[:, ok], block_ivar[:, ok]
    systems = PixelSystems(design, block_flux, block_ivar, regularization, plan)
    best = _grid_then_newton(systems, grid, newton_steps, tolerance)
    trained = index[ok]
    result.theta[trained], result.s2[trained] = best["theta"], best["s2"]
    result.log_likelihood[trained], result.chi2[trained] = best["lnL"], best["chi2"]
    result.grid_log_likelihood[:, trained] = best["grid_lnL"]
    result.grid_index[trained] = best["grid_index"]


def _run_blocks(work: Callable[[slice], None], blocks: list[slice], n_jobs: int) -> None:
    """``work`` on every block: in this thread, or in ``n_jobs`` threads with BLAS limited to
    one thread each (so the cores are not oversubscribed); the first error of a block is
    raised."""
    if n_jobs <= 1:
        for block in blocks:
            work(block)
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"), \
            ThreadPoolExecutor(max_workers=n_jobs) as pool:
        list(pool.map(work, blocks))   # re-raises the first error of a block


def _safeguarded_step(u, s2, d1u, d2u, d1, d2, lo, hi, small):
    """Next u = ln s^2, inside the bracket (lo, hi).

    Where s^2 is small next to the noise variance (``small``) the profile is nearly quadratic in
    s^2, so a Newton step in s^2 is taken; elsewhere it is smooth in ln s^2 and a Newton step in
    u is taken. If the preferred step leaves the bracket, the other is tried, then bisection.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        in_u = u - d1u / d2u
        in_s2 = np.log(s2 - d1 / d2)
    # closed bracket: at convergence the step is ~0 and u itself is a bracket end
    ok_u = (d2u < 0) & (in_u >= lo) & (in_u <= hi)
    ok_s2 = (d2 < 0) & np.isfinite(in_s2) & (in_s2 >= lo) & (in_s2 <= hi)
    first = np.where(small, in_s2, in_u)
    ok_first = np.where(small, ok_s2, ok_u)
    second = np.where(small, in_u, in_s2)
    ok_second = np.where(small, ok_u, ok_s2)
    return np.where(ok_first, first, np.where(ok_second, second, 0.5 * (lo + hi)))


def _noise_variance(ivar: np.ndarray, good: np.ndarray, dtype) -> np.ndarray:
    """1/ivar where good, 1 where masked (neutral in the fixed-residual sums)."""
    var = ivar.astype(dtype)
    np.add(var, ~good, out=var)             # masked: ivar 0 -> 1
    np.reciprocal(var, out=var)
    return var


def _grid_start(systems: PixelSystems, grid: np.ndarray) -> dict:
    """The start of every pixel's search: the fixed-residual likelihood of a first theta
    (s^2 = START_S2) on ``grid``, then Newton steps on it.

    Returns
    -------
    dict with ``u`` (ln s^2 to start from), its bracket ``lower``/``upper`` (one grid step
    wider than the neighbours of the best grid point), ``grid_lnL``, ``index`` (best grid
    point), ``n_masked`` and ``typical_ivar`` per pixel
    """
    n_pixels = systems.flux.shape[1]
    theta, _ = systems.solve(systems.weights(np.full(n_pixels, START_S2), out=systems._w))
    r2 = np.square(systems.residuals(theta), dtype=np.float32)
    r2[~systems.good] = 0.0
    var = _noise_variance(systems.ivar, systems.good, np.float32)
    n_masked = (~systems.good).sum(axis=0)
    grid_lnl = fixed_residual_grid(r2, var, n_masked, grid)
    index = np.argmax(grid_lnl, axis=0)
    tiny = grid[1] * 1e-4      # scatter below 1e-2 x the smallest grid s is indistinguishable
    log_grid = np.log(np.maximum(grid, tiny))
    n_good = systems.good.sum(axis=0)
    typical_ivar = systems.ivar.sum(axis=0) / np.maximum(n_good, 1)
    u = fixed_residual_newton(r2, var, n_masked, log_grid[index],
                              log_grid[np.maximum(index - 1, 0)],
                              log_grid[np.minimum(index + 1, grid.size - 1)], typical_ivar,
                              tolerance=START_TOLERANCE)
    return {"u": u, "lower": log_grid[np.maximum(index - 2, 0)],
            "upper": log_grid[np.minimum(index + 2, grid.size - 1)], "grid_lnL": grid_lnl,
            "index": index, "n_masked": n_masked, "typical_ivar": typical_ivar}


def _grid_then_newton(systems: PixelSystems, grid: np.ndarray, newton_steps: int,
                      tolerance: float) -> dict:
    """s^2, theta, lnL and chi^2 of every pixel of ``systems``: the grid start, exact profile
    evaluations each followed by Newton steps on the local model, s^2 = 0 compared last (see
    the module docstring)."""
    n_pixels = systems.flux.shape[1]
    start = _grid_start(systems, grid)
    u, lower, upper = start["u"], start["lower"], start["upper"]
    typical_ivar = start["typical_ivar"]
    var = _noise_variance(systems.ivar, systems.good, float)
    toward_zero = np.zeros(n_pixels, dtype=bool)
    finish_step = np.sqrt(0.1 * tolerance)
    system, members = systems, np.arange(n_pixels)   # the pixels `system` holds
    active = members                                  # pixels still moving
    last = {"theta": np.empty((n_pixels, systems.design.shape[1])), "lnL": np.empty(n_pixels),
            "chi2": np.empty(n_pixels), "s2": np.empty(n_pixels)}
    for _ in range(newton_steps):
        if active.size < 0.8 * members.size:  # shrink the working set once it pays
            system = systems.columns(active)
            members = active
        s2 = np.exp(u[members])
        state = system.profile(s2, derivatives=True)
        _record(last, members, state, s2)   # the exact (theta, s^2) pair just evaluated
        d1u = s2 * state["d1"]                          # dlnL/du
        d2u = s2 * s2 * state["d2"] + d1u               # d2lnL/du2
        lo = np.where(d1u > 0, u[members], lower[members])
        hi = np.where(d1u < 0, u[members], upper[members])
        lower[members], upper[members] = lo, hi
        small = s2 * typical_ivar[members] < 1.0
        step = _safeguarded_step(u[members], s2, d1u, d2u, state["d1"], state["d2"], lo, hi,
                                 small) - u[members]
        # converged: a tiny step, or heading for s^2 = 0: the profile falls with s^2 and is
        # concave, and a Newton step in s^2 would cross 0 (s^2 = 0 is compared below)
        at_floor = (state["d1"] < 0) & (state["d2"] < 0) & (
            s2 - state["d1"] / state["d2"] <= 0)
        toward_zero[members] |= at_floor
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = -d1u / d2u
        finish = (systems.regularization == 0) & (d2u < 0) & (np.abs(newton) <= finish_step) \
            & ~at_floor & (u[members] + newton >= lo) & (u[members] + newton <= hi)
        if finish.any():   # take the last, tiny step (see the module docstring)
            _last_step(last, u, members[finish], newton[finish], state, finish, d1u, d2u)
        moving = (np.abs(step) > tolerance) & ~at_floor & ~finish
        active = members[moving]
        if active.size == 0:
            break
        # Newton on the local model (fixed residuals + the theta re-fit's curvature); its first
        # step is the exact Newton step just computed
        cols = np.flatnonzero(moving)
        u[active] = fixed_residual_newton(
            state["r2"][:, cols], var[:, active], start["n_masked"][active], u[active],
            lo[cols], hi[cols], typical_ivar[active], steps=MODEL_STEPS,
            curvature=s2[cols] ** 2 * state["curvature"][cols], center=u[active],
            tolerance=0.1 * tolerance)
    else:   # out of evaluations: evaluate where the last steps led
        _record(last, active, systems.columns(active).profile(np.exp(u[active])),
                np.exp(u[active]))
    _compare_zero(systems, np.flatnonzero((start["index"] <= 1) | toward_zero), last)
    return {**last, "grid_lnL": start["grid_lnL"], "grid_index": start["index"]}


def _record(last: dict, pixels: np.ndarray, state: dict, s2: np.ndarray) -> None:
    """Keep the profile ``state`` evaluated at ``s2`` as the result of ``pixels``."""
    for key in ("theta", "lnL", "chi2"):
        last[key][pixels] = state[key]
    last["s2"][pixels] = s2


def _last_step(last: dict, u: np.ndarray, done: np.ndarray, du: np.ndarray, state: dict,
               finish: np.ndarray, d1u: np.ndarray, d2u: np.ndarray) -> None:
    """The last, tiny Newton step ``du`` of the pixels ``done`` (rows ``finish`` of
    ``state``): theta, lnL and chi^2 carried along by their derivatives."""
    u[done] += du
    last["s2"][done] = np.exp(u[done])
    last["theta"][done] += state["dtheta_du"][finish] * du[:, None]
    last["lnL"][done] += du * (d1u[finish] + 0.5 * d2u[finish] * du)
    last["chi2"][done] += state["dchi2_du"][finish] * du


def _compare_zero(systems: PixelSystems, near_zero: np.ndarray, last: dict) -> None:
    """s^2 = 0 is a candidate too (a boundary maximum) at the pixels ``near_zero``, where the
    bracket reaches down to it: kept where its lnL is at least as high."""
    if not near_zero.size:
        return
    zero = systems.columns(near_zero).profile(np.zeros(near_zero.size))
    better = zero["lnL"] >= last["lnL"][near_zero]
    chosen = near_zero[better]
    last["theta"][chosen] = zero["theta"][better]
    last["lnL"][chosen] = zero["lnL"][better]
    last["chi2"][chosen] = zero["chi2"][better]
    last["s2"][chosen] = 0.0


def train_censored(design: np.ndarray, flux: np.ndarray, ivar: np.ndarray,
                   allowed: np.ndarray, **options) -> TrainingResult:
    """:func:`train_pixels` where each pixel may use only some terms (censoring, Casey et al.
    2016): a term's coefficient is exactly zero at the pixels where it is not allowed.

    Pixels sharing one pattern of allowed terms (few patterns: one per combination of censored
    labels) are trained together on the design matrix's allowed columns.

    Parameters
    ----------
    design : ndarray, shape (n_stars, n_terms)
    flux, ivar : ndarray, shape (n_stars, n_pixels)
    allowed : ndarray of bool, shape (n_pixels, n_terms)
        Terms each pixel may use (the constant term always).
    **options
        Passed on to :func:`train_pixels` (``progress`` counts the pixels of every group).
    """
    n_terms, n_pixels = design.shape[1], flux.shape[1]
    allowed = np.asarray(allowed, bool)
    if allowed.shape != (n_pixels, n_terms) or not allowed[:, 0].all():
        raise ValueError(f"allowed must have shape ({n_pixels}, {n_terms}) and allow the "
                         "constant term everywhere")
    patterns, group = np.unique(allowed, axis=0, return_inverse=True)
    parts = []
    for g, pattern in enumerate(patterns):                 # one pass per censoring pattern
        pixels = np.flatnonzero(group.ravel() == g)
        parts.append((pixels, pattern, train_pixels(design[:, pattern], flux[:, pixels],
                                                    ivar[:, pixels], **options)))
    n_grid = parts[0][2].grid_log_likelihood.shape[0]
    theta = np.zeros((n_pixels, n_terms))
    out = TrainingResult(theta=theta, s2=np.zeros(n_pixels),
                         pixel_ok=np.zeros(n_pixels, dtype=bool),
                         log_likelihood=np.zeros(n_pixels),
                         grid_log_likelihood=np.zeros((n_grid, n_pixels)),
                         grid_index=np.zeros(n_pixels, dtype=int), chi2=np.zeros(n_pixels),
                         dof=np.zeros(n_pixels, dtype=int))
    for pixels, pattern, part in parts:
        theta[np.ix_(pixels, np.flatnonzero(pattern))] = part.theta
        for name in ("s2", "pixel_ok", "log_likelihood", "grid_index", "chi2", "dof"):
            getattr(out, name)[pixels] = getattr(part, name)
        out.grid_log_likelihood[:, pixels] = part.grid_log_likelihood
    return out
