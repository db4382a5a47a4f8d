"""Full posteriors of the labels with PyMC (imported lazily; ``pip install skcannon[mcmc]``).

The Cannon's quadratic prediction is written in PyTensor: scaled labels -> design vector
(constant, linear terms, and all products l_i l_j with i <= j gathered by index arrays) ->
model flux = Theta v for every pixel at once. The likelihood is N(f | model, sigma^2 + s^2) over
the model's pixels; masked pixels get an effectively infinite sigma, so one compiled model serves
every spectrum (the data are swapped with ``pm.set_data``).

``likelihood="quadratic"`` evaluates the same log-likelihood (to a constant) through the
per-star quadratic form of chi^2 in the design vector (G, h, c of
:mod:`skcannon.inference.fitting`): every gradient then costs O(k^2) instead of O(n_pixels k),
all pixels still count, and the posterior is identical (tests check the log-densities agree).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from skcannon.inference.fitting import factor_system, sufficient_statistics
from skcannon.labels import label_axis_name

#: A masked pixel's standard deviation: large enough to carry no weight.
MASKED_SIGMA = 1e6
#: Default priors: "uniform" over the training range widened by this fraction on each side.
PRIOR_MARGIN = 0.1
#: NUTS implementations: nutpie (compiled once with numba, then only the data change: the
#: default when installed) and PyMC's own sampler.
SAMPLERS = ("nutpie", "pymc")


def nutpie_installed() -> bool:
    """True when the nutpie sampler can be imported."""
    import importlib.util

    return importlib.util.find_spec("nutpie") is not None


def _no_c_blas_needed() -> None:
    """Tell PyTensor it has no C BLAS to link to, unless the user configured one.

    nutpie compiles the model with numba, whose matrix products call the OpenBLAS that numpy
    and scipy bundle; PyTensor's C backend (the only user of ``blas__ldflags``) never runs. Left
    unset, PyTensor searches the system for a BLAS on first use by a graph rewrite and, on a
    pip install, warns that it "could not link to a BLAS installation" - true, and irrelevant
    here. A user's own setting (``PYTENSOR_FLAGS`` or ``.pytensorrc``) is left alone."""
    import os
    from pathlib import Path

    import pytensor

    configured = ("blas__ldflags" in os.environ.get("PYTENSOR_FLAGS", "")
                  or Path(os.environ.get("PYTENSORRC", Path.home() / ".pytensorrc")).exists())
    if not configured:
        pytensor.config.blas__ldflags = ""


def default_sampler() -> str:
    """The fastest sampler installed (measured in benchmarks/bench_mcmc.py): nutpie, else
    PyMC."""
    return "nutpie" if nutpie_installed() else "pymc"


@dataclass
class Posterior:
    """Posterior samples of one spectrum's labels.

    Attributes
    ----------
    idata : arviz.InferenceData
    summary : DataFrame  mean, sd, 16/50/84 percentiles, r_hat, ess_bulk, ess_tail per label
    divergences : int
    warnings : list of str  bad R-hat, low ESS or divergences
    priors : str  the priors, in words
    """

    idata: object
    summary: pd.DataFrame
    divergences: int
    warnings: list
    priors: str

    def samples(self, names) -> np.ndarray:
        """Draws of all chains, shape (n_draws_total, n_labels), in ``names`` order."""
        post = self.idata.posterior
        return np.column_stack([post[n].values.reshape(-1) for n in names])


class CannonPosterior:
    """A compiled PyMC model of one spectrum given a trained Cannon.

    Parameters
    ----------
    model : fitted Cannon
    prior : {"uniform", "normal"}
        "uniform": over the training label range +- 10 %; "normal": weakly informative normals
        centred on the training mean with twice the training standard deviation.
    """

    def __init__(self, model, prior: str = "uniform", likelihood: str = "pixels",
                 sampler: str | None = None) -> None:
        import pymc as pm
        import pytensor.tensor as pt

        self.sampler = default_sampler() if sampler is None else sampler
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        if self.sampler == "nutpie":
            if not nutpie_installed():
                raise ValueError("sampler 'nutpie' is not installed (pip install nutpie)")
            _no_c_blas_needed()
        self.prior = prior
        self._nutpie_model = None
        if prior not in ("uniform", "normal"):
            raise ValueError(f"prior must be 'uniform' or 'normal', got {prior!r}")
        if likelihood not in ("pixels", "quadratic"):
            raise ValueError(f"likelihood must be 'pixels' or 'quadratic', got {likelihood!r}")
        self.likelihood = likelihood
        self.cannon = model
        self.names = list(model.label_names)
        # the model's terms: each a product of scaled labels (label indices; () = constant)
        terms = model.vectorizer_.terms
        width = max(1, max(len(t) for t in terms))
        term_factors = np.zeros((width, len(terms)), dtype=np.int64)   # 0 = the constant 1
        for j, term in enumerate(terms):
            term_factors[: len(term), j] = np.asarray(term, dtype=np.int64) + 1
        theta = model.theta_
        n_pixels, k = theta.shape
        # error factors U: pixel covariance diag(sigma^2) + U U^T (Woodbury; M^-1 per spectrum)
        self.factors = getattr(model, "error_factors_", None)
        if self.factors is not None and not self.factors.shape[1]:
            self.factors = None
        offsets, scales = model.scaling_.offsets, model.scaling_.scales
        lines = []
        self.bounds = np.vstack(model.label_bounds(PRIOR_MARGIN)) if prior == "uniform" else None
        with pm.Model() as self.pymc_model:
            if likelihood == "pixels":
                flux = pm.Data("flux", np.ones(n_pixels))
                sigma = pm.Data("sigma", np.ones(n_pixels))
                if self.factors is not None:
                    r = self.factors.shape[1]
                    m_inverse = pm.Data("M_inverse", np.eye(r))
            else:
                G = pm.Data("G", np.eye(k))
                h = pm.Data("h", np.zeros(k))
                c = pm.Data("c", 0.0)
            labels = []
            for i, name in enumerate(self.names):
                if prior == "uniform":
                    lo, hi = self.bounds[:, i]
                    labels.append(pm.Uniform(name, lower=lo, upper=hi))
                    lines.append(f"{name} ~ Uniform({lo:.4g}, {hi:.4g})")
                else:
                    labels.append(pm.Normal(name, mu=offsets[i], sigma=2 * scales[i]))
                    lines.append(f"{name} ~ Normal({offsets[i]:.4g}, {2 * scales[i]:.4g})")
            scaled = (pt.stack(labels) - offsets) / scales
            # every term is a product of at most `width` factors from [1, scaled labels...]:
            # a few gathers and products instead of one node per term (a small graph compiles
            # several times faster with numba)
            factors = pt.concatenate([pt.ones(1), scaled])
            design = factors[term_factors[0]]
            for row in term_factors[1:]:
                design = design * factors[row]
            if likelihood == "pixels" and self.factors is None:
                mean = pt.dot(theta, design)               # all pixels at once
                pm.Normal("obs", mu=mean, sigma=sigma, observed=flux)
            elif likelihood == "pixels":
                residual = flux - pt.dot(theta, design)
                weighted = residual / sigma ** 2
                y = pt.dot(self.factors.T, weighted)
                chi2 = pt.sum(weighted * residual) - pt.dot(y, pt.dot(m_inverse, y))
                pm.Potential("loglike", -0.5 * chi2)
            else:
                chi2 = c - 2 * pt.dot(h, design) + pt.dot(design, pt.dot(G, design))
                pm.Potential("loglike", -0.5 * chi2)
        self.priors = "; ".join(lines)

    def spectrum_data(self, flux: np.ndarray, ivar: np.ndarray) -> dict[str, np.ndarray]:
        """The model's data for one normalized spectrum (on the model grid), by name."""
        model = self.cannon
        good = (ivar > 0) & np.isfinite(ivar) & np.isfinite(flux) & model.pixel_mask_
        if good.sum() <= len(self.names):
            raise ValueError(f"only {good.sum()} usable pixels: cannot sample")
        if self.likelihood == "quadratic":
            stats = sufficient_statistics(model.theta_, model.s2_, model.pixel_mask_,
                                          flux[None], ivar[None], factors=self.factors)
            return {"G": stats.G[0], "h": stats.h[0], "c": np.asarray(float(stats.c[0]))}
        sigma = np.where(good, np.sqrt(1 / np.where(good, ivar, 1) + model.s2_), MASKED_SIGMA)
        data = {"flux": np.where(good, flux, 1.0), "sigma": sigma}
        if self.factors is not None:
            weight = np.where(good, sigma ** -2.0, 0.0)
            data["M_inverse"] = np.linalg.inv(factor_system(weight, self.factors)[0])
        return data

    def set_spectrum(self, flux: np.ndarray, ivar: np.ndarray) -> None:
        """Make one normalized spectrum (on the model grid) the PyMC model's data."""
        import pymc as pm

        with self.pymc_model:
            pm.set_data(self.spectrum_data(flux, ivar))

    def _inside_prior(self, initial: np.ndarray) -> np.ndarray:
        """Physical starting labels, moved just inside a uniform prior's open interval (a best
        fit on a bound lies outside it)."""
        initial = np.ravel(initial).astype(float)
        if self.bounds is None:
            return initial
        inset = 1e-6 * (self.bounds[1] - self.bounds[0])
        return np.clip(initial, self.bounds[0] + inset, self.bounds[1] - inset)

    def _unconstrained(self, initial: np.ndarray) -> np.ndarray:
        """Physical labels in the sampler's unconstrained space (logit of the position in a
        uniform prior's interval; normal priors are unbounded)."""
        initial = self._inside_prior(initial)
        if self.bounds is None:
            return initial
        position = (initial - self.bounds[0]) / (self.bounds[1] - self.bounds[0])
        return np.log(position / (1 - position))

    def _draw_pymc(self, flux, ivar, *, draws, tune, chains, seed, cores, initial,
                   progressbar):
        import pymc as pm

        self.set_spectrum(flux, ivar)
        start = None
        if initial is not None:
            start = {n: float(v) for n, v in zip(self.names, self._inside_prior(initial),
                                                  strict=True)}
        with self.pymc_model:
            return pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed,
                             cores=cores or min(chains, 2), initvals=start,
                             progressbar=progressbar, compute_convergence_checks=False)

    def _draw_nutpie(self, flux, ivar, *, draws, tune, chains, seed, initial, progressbar):
        import nutpie

        if self._nutpie_model is None:            # compiled once, then only the data change
            self._nutpie_model = nutpie.compile_pymc_model(self.pymc_model)
        compiled = self._nutpie_model.with_data(**self.spectrum_data(flux, ivar))
        return nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed,
                             progress_bar=progressbar,
                             init_mean=None if initial is None else self._unconstrained(initial))

    def sample(self, flux: np.ndarray, ivar: np.ndarray, draws: int = 1000, tune: int = 1000,
               chains: int = 4, seed: int = 0, cores: int | None = None,
               initial: np.ndarray | None = None, progressbar: bool = False) -> Posterior:
        """NUTS samples for one normalized spectrum (``flux``, ``ivar`` on the model grid).

        ``initial`` (physical labels) starts the chains, e.g. at the optimizer's best fit.
        """
        import arviz as az

        if self.sampler == "nutpie":
            idata = self._draw_nutpie(flux, ivar, draws=draws, tune=tune, chains=chains,
                                      seed=seed, initial=initial, progressbar=progressbar)
        else:
            idata = self._draw_pymc(flux, ivar, draws=draws, tune=tune, chains=chains,
                                    seed=seed, cores=cores, initial=initial,
                                    progressbar=progressbar)
        summary = az.summary(idata, var_names=self.names, round_to="none",
                             stat_focus="mean")[["mean", "sd", "r_hat", "ess_bulk", "ess_tail"]]
        draws_all = np.column_stack([idata.posterior[n].values.reshape(-1) for n in self.names])
        for q in (16, 50, 84):
            summary[f"p{q}"] = np.percentile(draws_all, q, axis=0)
        divergences = int(idata.sample_stats["diverging"].values.sum())
        warnings = []
        if (summary["r_hat"] > 1.01).any():
            bad = ", ".join(summary.index[summary.r_hat > 1.01])
            warnings.append(f"R-hat above 1.01 for {bad}")
        if (summary["ess_bulk"] < 100 * chains).any():
            warnings.append("bulk ESS below 100 per chain for "
                            + ", ".join(summary.index[summary.ess_bulk < 100 * chains]))
        if divergences:
            warnings.append(f"{divergences} divergent transitions")
        return Posterior(idata, summary, divergences, warnings, self.priors)


def sample_many(sampler: CannonPosterior, flux: np.ndarray, ivar: np.ndarray, *,
                ids=None, initial: np.ndarray | None = None, draws: int = 1000,
                tune: int = 1000, chains: int = 4, seed: int = 0,
                progress: bool = False) -> pd.DataFrame:
    """Posteriors of many spectra with one compiled model (only the data change per star).

    Parameters
    ----------
    sampler : CannonPosterior
    flux, ivar : ndarray, shape (n_stars, n_pixels)
    ids : sequence of str, optional  (default: row numbers)
    initial : ndarray, shape (n_stars, n_labels), optional  e.g. the optimizer's best fits
    progress : bool  a progress bar over stars on stderr

    Returns
    -------
    DataFrame, one row per star: ``ID``, per label ``<L>_MEAN``, ``_SD``, ``_P16``, ``_P50``,
    ``_P84``, ``_RHAT``, ``_ESS``; ``DIVERGENCES``, ``CONVERGED`` (R-hat <= 1.01, bulk ESS >= 100
    per chain, no divergence) and ``WARNINGS`` (why not).
    """
    import sys

    from tqdm.auto import tqdm

    ids = [f"row {n}" for n in range(len(flux))] if ids is None else list(ids)
    rows = []
    for n in tqdm(range(len(flux)), desc="posteriors", unit="star", file=sys.stderr,
                  disable=not progress):
        post = sampler.sample(flux[n], ivar[n], draws=draws, tune=tune, chains=chains,
                              seed=seed + n, initial=None if initial is None else initial[n])
        row = {"ID": ids[n]}
        for name in sampler.names:
            stats = post.summary.loc[name]
            row.update({f"{name}_MEAN": stats["mean"], f"{name}_SD": stats["sd"],
                        f"{name}_P16": stats["p16"], f"{name}_P50": stats["p50"],
                        f"{name}_P84": stats["p84"], f"{name}_RHAT": stats["r_hat"],
                        f"{name}_ESS": stats["ess_bulk"]})
        row.update({"DIVERGENCES": post.divergences, "CONVERGED": not post.warnings,
                    "WARNINGS": "; ".join(post.warnings)})
        rows.append(row)
    return pd.DataFrame(rows)


def posterior_comparison(names, posterior: Posterior, fit_sigma: np.ndarray,
                         cv_scatter: np.ndarray | None = None,
                         reference_sigma: np.ndarray | None = None,
                         calibration: np.ndarray | None = None) -> pd.DataFrame:
    """Posterior sd vs the optimizer's formal uncertainty vs the cross-validation scatter vs
    the reference (ASPCAP) uncertainty, per label, with the ratios; with the model's
    ``calibration`` (systematic floor per label), the calibrated optimizer and posterior
    uncertainties (the floor added in quadrature) too."""
    table = pd.DataFrame({"label": list(names),
                          "posterior_sd": posterior.summary["sd"].to_numpy(),
                          "optimizer_sigma": np.ravel(fit_sigma)})
    table["posterior_over_optimizer"] = table.posterior_sd / table.optimizer_sigma
    if calibration is not None:
        floor = np.ravel(calibration)
        table["calibrated_posterior_sd"] = np.sqrt(table.posterior_sd ** 2 + floor ** 2)
        table["calibrated_optimizer_sigma"] = np.sqrt(table.optimizer_sigma ** 2 + floor ** 2)
    if cv_scatter is not None:
        table["cv_scatter"] = np.ravel(cv_scatter)
        table["cv_over_posterior"] = table.cv_scatter / table.posterior_sd
    if reference_sigma is not None:
        table["reference_sigma"] = np.ravel(reference_sigma)
    return table


def posterior_corner_figure(posterior: Posterior, names, best_fit: np.ndarray | None = None):
    """Corner plot of the posterior draws, the optimizer's best fit marked."""
    import corner
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2.2 * len(names), 2.2 * len(names)))
    corner.corner(posterior.samples(names), labels=[label_axis_name(n) for n in names],
                  fig=figure, quantiles=[0.16, 0.5, 0.84], show_titles=True,
                  title_kwargs={"fontsize": 7}, label_kwargs={"fontsize": 8},
                  truths=None if best_fit is None else np.ravel(best_fit), truth_color="tab:red")
    return figure
