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

Strategy, all pixels at once:

1. theta at a starting s^2; residuals r.
2. Grid: for those fixed residuals the likelihood in s^2 costs only element-wise work, so it is
   evaluated (in float32) on a wide grid of s^2; the best grid point of every pixel brackets its
   global maximum between the neighbouring grid points.
3. Refinement: safeguarded Newton steps on u = ln s^2 on the exact profile (theta re-solved in
   float64 at every step, derivatives above), kept inside the bracket (widened by one grid step
   on each side, since theta moves), only for pixels not yet converged.

A_p for all pixels is one GEMM: W^T (n_stars x n_pairs) with the n_terms (n_terms + 1) / 2
products x_i x_j, symmetric entries filled afterwards.

L1 regularization (Casey et al. 2016): ``regularization`` Lambda adds Lambda * sum_{j>=1} |theta_j|
to -lnL, solved by iteratively reweighted ridge (Lambda / |theta_j| on the diagonal).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

#: Default s^2 grid: 0, and s^2 from 1e-7 to 10 (s from 3e-4 to 3 in normalized-flux units) in
#: steps of a factor 10. The profile is broad in ln s^2, so this brackets its maximum; Newton
#: steps then find it exactly, also below the first positive value (s below 3e-4 is far below
#: the noise of any APOGEE spectrum).
DEFAULT_SCATTER_GRID = np.concatenate([[0.0], 10.0 ** np.arange(-7.0, 1.5, 1.0)])
#: Newton refinement steps on ln s^2.
NEWTON_STEPS = 6
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
        The profile on the s^2 grid.
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


class PixelSystems:
    """Batched weighted least squares of all pixels on one design matrix.

    Holds three (n_stars, n_pixels) work buffers so that an evaluation allocates no large
    arrays (fresh 50 MB allocations cost more than the arithmetic on them).
    """

    def __init__(self, design: np.ndarray, flux: np.ndarray, ivar: np.ndarray,
                 regularization: float = 0.0) -> None:
        self.design = np.ascontiguousarray(design, dtype=float)          # (n, k)
        self.flux = np.asarray(flux, dtype=float)                        # (n, p), may be a view
        self.ivar = np.asarray(ivar, dtype=float)                        # (n, p)
        self.good = self.ivar > 0
        k = self.design.shape[1]
        self.iu, self.ju = np.triu_indices(k)
        self.pairs = self.design[:, self.iu] * self.design[:, self.ju]   # (n, k(k+1)/2)
        self.regularization = float(regularization)
        self._w = np.empty_like(self.flux)
        self._r = np.empty_like(self.flux)
        self._t = np.zeros_like(self.flux)
        np.log(self.ivar, out=self._t, where=self.good)      # 0 where masked
        self.sum_log_ivar = self._t.sum(axis=0)

    def columns(self, pixels: np.ndarray) -> PixelSystems:
        """The systems of a subset of pixels (shares the design; copies the pixel columns)."""
        sub = object.__new__(PixelSystems)
        sub.design, sub.iu, sub.ju, sub.pairs = self.design, self.iu, self.ju, self.pairs
        sub.regularization = self.regularization
        sub.flux = np.ascontiguousarray(self.flux[:, pixels])
        sub.ivar = np.ascontiguousarray(self.ivar[:, pixels])
        sub.good = sub.ivar > 0
        sub.sum_log_ivar = self.sum_log_ivar[pixels]
        sub._w, sub._r, sub._t = (np.empty_like(sub.flux) for _ in range(3))
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
        flat = weights.T @ self.pairs                   # (p, n_pairs): one GEMM
        A = np.empty((flat.shape[0], k, k))
        A[:, self.iu, self.ju] = flat
        A[:, self.ju, self.iu] = flat
        return A

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

    def profile(self, s2: np.ndarray, derivatives: bool = False) -> dict:
        """Profile log-likelihood (and derivatives in s^2) at per-pixel s2, shape (p,)."""
        W, R, T = self._w, self._r, self._t
        self.weights(s2, out=W)
        theta, A = self.solve(W)
        np.matmul(self.design, theta.T, out=R)
        np.subtract(self.flux, R, out=R)                # residuals (masked pixels: w = 0)
        np.multiply(R, R, out=T)
        chi2 = np.einsum("np,np->p", W, T)              # sum w r^2
        np.multiply(W, R, out=R)                        # R now holds w r
        np.multiply(self.ivar, s2, out=T)
        np.log1p(T, out=T)                              # ln(1 + ivar s^2), 0 where masked
        log_w = self.sum_log_ivar - T.sum(axis=0)
        out = {"theta": theta, "chi2": chi2, "lnL": -0.5 * (chi2 - log_w)}
        if self.regularization > 0:
            out["lnL"] = out["lnL"] - self.regularization * np.abs(theta[:, 1:]).sum(axis=1)
        if derivatives:
            sum_w2r2 = np.einsum("np,np->p", R, R)      # sum w^2 r^2
            out["d1"] = 0.5 * (sum_w2r2 - W.sum(axis=0))
            np.multiply(W, R, out=T)                    # T = w^2 r
            g = T.T @ self.design                       # (p, k)
            w3r2 = np.einsum("np,np->p", T, R)          # sum w^3 r^2
            w2 = np.einsum("np,np->p", W, W)
            Ainv_g = np.linalg.solve(A, g[..., None])[..., 0]
            out["d2"] = 0.5 * w2 - w3r2 + np.einsum("pk,pk->p", g, Ainv_g)
        return out


def fixed_residual_grid(r2: np.ndarray, var: np.ndarray, n_masked: np.ndarray,
                        grid: np.ndarray) -> np.ndarray:
    """lnL on the s^2 grid for fixed residuals, shape (n_grid, n_pixels).

    ``r2`` squared residuals and ``var`` noise variances, float32, shape (n_stars, n_pixels),
    with masked entries neutralized (r2 = 0, var = 1; their ln(1 + s^2) is subtracted using
    ``n_masked`` per pixel). Sums are accumulated in float64.
    """
    out = np.empty((grid.size, r2.shape[1]))
    total = np.empty_like(var)
    work = np.empty_like(var)
    for i, value in enumerate(grid):
        np.add(var, np.float32(value), out=total)
        np.log(total, out=work)
        log_det = work.sum(axis=0, dtype=np.float64) - n_masked * np.log1p(value)
        np.reciprocal(total, out=total)
        chi2 = np.einsum("np,np->p", r2, total, dtype=np.float64)
        out[i] = -0.5 * (chi2 + log_det)
    return out


def fixed_residual_newton(r2: np.ndarray, var: np.ndarray, n_masked: np.ndarray,
                          u: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                          typical_ivar: np.ndarray, steps: int = 3) -> np.ndarray:
    """Safeguarded Newton steps on u = ln s^2 for fixed residuals (element-wise work only).

    lnL(s^2) = -1/2 sum_n [r^2 / t + ln t], t = var + s^2; arrays as in
    :func:`fixed_residual_grid`. Returns the new u, shape (n_pixels,).
    """
    q = np.empty_like(var)
    r2q = np.empty_like(var)
    for _ in range(steps):
        s2 = np.exp(u)
        np.add(var, s2.astype(var.dtype), out=q)
        np.reciprocal(q, out=q)                          # 1/t
        masked_q = n_masked / (1.0 + s2)                 # their 1/t, removed from the sums
        sum_q = q.sum(axis=0, dtype=np.float64) - masked_q
        np.multiply(r2, q, out=r2q)
        sum_r2q2 = np.einsum("np,np->p", r2q, q, dtype=np.float64)
        q *= q
        sum_q2 = q.sum(axis=0, dtype=np.float64) - masked_q / (1.0 + s2)
        sum_r2q3 = np.einsum("np,np->p", r2q, q, dtype=np.float64)
        d1u = s2 * 0.5 * (sum_r2q2 - sum_q)
        d2u = s2 * s2 * (0.5 * sum_q2 - sum_r2q3) + d1u
        lower = np.where(d1u > 0, u, lower)
        upper = np.where(d1u < 0, u, upper)
        u = _safeguarded_step(u, s2, d1u, d2u, d1u / s2, (d2u - d1u) / (s2 * s2), lower, upper,
                              s2 * typical_ivar < 1.0)
    return u


def train_pixels(
    design: np.ndarray,
    flux: np.ndarray,
    ivar: np.ndarray,
    scatter_grid: np.ndarray | None = None,
    regularization: float = 0.0,
    min_good_fraction: float = 0.5,
    newton_steps: int = NEWTON_STEPS,
    tolerance: float = 1e-7,
    n_jobs: int | None = None,
) -> TrainingResult:
    """Learn theta and s^2 for every pixel.

    Parameters
    ----------
    design : ndarray, shape (n_stars, n_terms)
        Vectorized scaled labels.
    flux, ivar : ndarray, shape (n_stars, n_pixels)
        Normalized flux and inverse variance (0 = masked).
    scatter_grid : ndarray, shape (n_grid,), optional
        Candidate s^2 values, increasing, starting at 0 (default DEFAULT_SCATTER_GRID).
    regularization : float
        L1 strength Lambda (0 = the classic Cannon).
    min_good_fraction : float
        A pixel is excluded when fewer than this fraction of the stars (or fewer than
        2 x n_terms stars) have it unmasked.
    newton_steps : int
        Maximum refinement steps on ln s^2 after the grid.
    tolerance : float
        A pixel has converged when its Newton step in ln s^2 is below this.
    n_jobs : int or None
        Threads, each working on its own block of pixels (None: the number of CPUs, at most
        4). Element-wise NumPy work runs in parallel this way; BLAS is limited to one thread
        per block meanwhile so the cores are not oversubscribed.
    """
    grid = DEFAULT_SCATTER_GRID if scatter_grid is None else np.asarray(scatter_grid, float)
    if grid.ndim != 1 or grid.size < 3 or np.any(np.diff(grid) <= 0) or grid[0] != 0:
        raise ValueError("scatter_grid must be increasing, start at 0 and have >= 3 values")
    n_stars, n_terms = design.shape
    n_pixels = flux.shape[1]
    usable = (ivar > 0) & np.isfinite(ivar) & np.isfinite(flux)
    ivar = np.where(usable, ivar, 0.0)    # copies: the caller's arrays are never touched
    flux = np.where(usable, flux, 0.0)
    del usable
    n_good = (ivar > 0).sum(axis=0)
    pixel_ok = n_good >= max(min_good_fraction * n_stars, 2 * n_terms)
    result = TrainingResult(
        theta=np.hstack([np.ones((n_pixels, 1)), np.zeros((n_pixels, n_terms - 1))]),
        s2=np.zeros(n_pixels), pixel_ok=pixel_ok, log_likelihood=np.zeros(n_pixels),
        grid_log_likelihood=np.zeros((grid.size, n_pixels)),
        grid_index=np.zeros(n_pixels, dtype=int), chi2=np.zeros(n_pixels),
        dof=n_good - n_terms)
    if not pixel_ok.any():
        return result
    if not pixel_ok.all():   # drop the excluded pixels once
        flux, ivar = flux[:, pixel_ok], ivar[:, pixel_ok]
    n_jobs = min(os.cpu_count() or 1, 4) if n_jobs is None else max(int(n_jobs), 1)
    edges = np.linspace(0, flux.shape[1], n_jobs + 1).astype(int)
    blocks = [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]

    def work(block: slice) -> dict:   # column blocks are views: no copies
        systems = PixelSystems(design, flux[:, block], ivar[:, block], regularization)
        return _grid_then_newton(systems, grid, newton_steps, tolerance)

    if len(blocks) == 1:
        parts = [work(blocks[0])]
    else:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"), \
                ThreadPoolExecutor(max_workers=len(blocks)) as pool:
            parts = list(pool.map(work, blocks))
    best = {key: np.concatenate([part[key] for part in parts],
                                axis=1 if key == "grid_lnL" else 0) for key in parts[0]}
    result.theta[pixel_ok], result.s2[pixel_ok] = best["theta"], best["s2"]
    result.log_likelihood[pixel_ok], result.chi2[pixel_ok] = best["lnL"], best["chi2"]
    result.grid_log_likelihood[:, pixel_ok] = best["grid_lnL"]
    result.grid_index[pixel_ok] = best["grid_index"]
    return result


def _safeguarded_step(u, s2, d1u, d2u, d1, d2, lo, hi, small):
    """Next u = ln s^2, inside the bracket (lo, hi).

    Where s^2 is small next to the noise variance (``small``) the profile is nearly quadratic in
    s^2, so a Newton step in s^2 is taken; elsewhere it is smooth in ln s^2 and a Newton step in
    u is taken. If the preferred step leaves the bracket, the other is tried, then bisection.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        in_u = u - d1u / d2u
        in_s2 = np.log(s2 - d1 / d2)
    ok_u = (d2u < 0) & (in_u > lo) & (in_u < hi)
    ok_s2 = (d2 < 0) & np.isfinite(in_s2) & (in_s2 > lo) & (in_s2 < hi)
    first = np.where(small, in_s2, in_u)
    ok_first = np.where(small, ok_s2, ok_u)
    second = np.where(small, in_u, in_s2)
    ok_second = np.where(small, ok_u, ok_s2)
    return np.where(ok_first, first, np.where(ok_second, second, 0.5 * (lo + hi)))


def _grid_then_newton(systems: PixelSystems, grid: np.ndarray, newton_steps: int,
                      tolerance: float) -> dict:
    n_pixels = systems.flux.shape[1]
    start_s2 = np.full(n_pixels, 1e-4)       # s = 0.01: a typical intrinsic scatter
    theta, _ = systems.solve(systems.weights(start_s2, out=systems._w))
    R = systems._r
    np.matmul(systems.design, theta.T, out=R)
    np.subtract(systems.flux, R, out=R)
    r2 = np.square(R, dtype=np.float32)
    r2[~systems.good] = 0.0
    var = systems.ivar.astype(np.float32)
    np.add(var, ~systems.good, out=var)             # masked: ivar 0 -> 1, so var = 1 there
    np.reciprocal(var, out=var)
    n_masked = (~systems.good).sum(axis=0)
    grid_lnl = fixed_residual_grid(r2, var, n_masked, grid)
    index = np.argmax(grid_lnl, axis=0)
    # bracket in u = ln s^2, one grid step wider than the neighbours of the best grid point
    tiny = grid[1] * 1e-4      # scatter below 1e-2 x the smallest grid s is indistinguishable
    log_grid = np.log(np.maximum(grid, tiny))
    lower = log_grid[np.maximum(index - 2, 0)]
    upper = log_grid[np.minimum(index + 2, grid.size - 1)]
    n_good = systems.good.sum(axis=0)
    typical_ivar = systems.ivar.sum(axis=0) / np.maximum(n_good, 1)
    u = fixed_residual_newton(r2, var, n_masked, log_grid[index],
                              log_grid[np.maximum(index - 1, 0)],
                              log_grid[np.minimum(index + 1, grid.size - 1)], typical_ivar)
    del r2, var
    active = np.arange(n_pixels)   # pixels still moving
    toward_zero = np.zeros(n_pixels, dtype=bool)
    system, members = systems, np.arange(n_pixels)   # the pixels `system` holds
    last = {"theta": np.empty((n_pixels, systems.design.shape[1])), "lnL": np.empty(n_pixels),
            "chi2": np.empty(n_pixels), "s2": np.empty(n_pixels)}
    for _ in range(newton_steps):
        if active.size < 0.8 * members.size:  # shrink the working set once it pays
            system = systems.columns(active)
            members = active
        moving = np.isin(members, active)
        s2 = np.exp(u[members])
        state = system.profile(s2, derivatives=True)
        for key in ("theta", "lnL", "chi2"):   # the exact (theta, s^2) pair just evaluated
            last[key][members] = state[key]
        last["s2"][members] = s2
        d1u = s2 * state["d1"]                          # dlnL/du
        d2u = s2 * s2 * state["d2"] + d1u               # d2lnL/du2
        lo = np.where(d1u > 0, u[members], lower[members])
        hi = np.where(d1u < 0, u[members], upper[members])
        small = s2 * typical_ivar[members] < 1.0
        step = np.where(moving, _safeguarded_step(u[members], s2, d1u, d2u, state["d1"],
                                                  state["d2"], lo, hi, small) - u[members], 0.0)
        lower[members] = np.where(moving, lo, lower[members])
        upper[members] = np.where(moving, hi, upper[members])
        u[members] += step
        # converged: a tiny step, or heading for s^2 = 0: the profile falls with s^2 and is
        # concave, and a Newton step in s^2 would cross 0 (s^2 = 0 is compared below)
        at_floor = (state["d1"] < 0) & (state["d2"] < 0) & (
            s2 - state["d1"] / state["d2"] <= 0)
        toward_zero[members] |= moving & at_floor
        active = members[moving & (np.abs(step) > tolerance) & ~at_floor]
        if active.size == 0:
            break
    if active.size:  # out of steps: evaluate where the last steps led
        state = systems.columns(active).profile(np.exp(u[active]))
        for key in ("theta", "lnL", "chi2"):
            last[key][active] = state[key]
        last["s2"][active] = np.exp(u[active])
    # s^2 = 0 is a candidate too (a boundary maximum) where the bracket reaches down to it
    near_zero = np.flatnonzero((index <= 1) | toward_zero)
    if near_zero.size:
        zero = systems.columns(near_zero).profile(np.zeros(near_zero.size))
        better = zero["lnL"] >= last["lnL"][near_zero]
        chosen = near_zero[better]
        last["theta"][chosen] = zero["theta"][better]
        last["lnL"][chosen] = zero["lnL"][better]
        last["chi2"][chosen] = zero["chi2"][better]
        last["s2"][chosen] = 0.0
    return {**last, "grid_lnL": grid_lnl, "grid_index": index}
