"""Full posteriors of a spectrum's labels: :class:`CannonPosterior` samples them with a registered
back end (nutpie, PyMC or emcee; see :mod:`skcannon.inference.samplers`) and summarizes the
draws; :func:`sample_many` does many spectra with one compiled model.

The posterior itself is :class:`skcannon.inference.posterior.LogPosterior` (numpy; priors
"uniform"/"normal", likelihood "pixels"/"quadratic"), and, for the PyMC-based back ends, the
same posterior as a PyMC model (:mod:`skcannon.inference.pymc_graph`; PyMC is imported only
when such a back end is used: ``pip install skcannon[mcmc]``).

``likelihood="quadratic"`` evaluates the same log-likelihood (to a constant) through the
per-star quadratic form of chi^2 in the design vector (G, h, c of
:mod:`skcannon.inference.quadratic`): every gradient then costs O(k^2) instead of O(n_pixels k),
all pixels still count, and the posterior is identical (tests check the log-densities agree).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from skcannon.inference.nuisance import SHIFT_WINDOW
from skcannon.inference.options import DEFAULT_RV_BOUNDS
from skcannon.inference.posterior import (  # noqa: F401 - MASKED_SIGMA, PRIOR_MARGIN: public here
    LIKELIHOODS,
    MASKED_SIGMA,
    PRIOR_MARGIN,
    LabelPriors,
    LogPosterior,
    check_choice,
)
from skcannon.inference.posterior_nuisance import RV_NAME, NuisancePosterior, nuisance_setup
from skcannon.inference.samplers import (  # noqa: F401 - SAMPLERS, nutpie_installed: public here
    SAMPLERS,
    default_sampler,
    nutpie_installed,
    sampler_class,
)
from skcannon.labels import label_axis_name

#: Convergence: R-hat above this is a warning.
MAX_R_HAT = 1.01
#: Convergence: a bulk effective sample size below this per chain is a warning.
MIN_ESS_PER_CHAIN = 100


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
    """The posterior of one spectrum's labels given a trained Cannon, sampled by a back end.

    Parameters
    ----------
    model : CannonState or fitted Cannon
        The model's learned state (a fitted Cannon stands for its ``state_``).
    prior : {"uniform", "normal"}, default="uniform"
        "uniform": over the training label range +- 10 %; "normal": weakly informative normals
        centred on the training mean with twice the training standard deviation.
    likelihood : {"pixels", "quadratic"}, default="quadratic"
        The same posterior, pixel by pixel or through the spectrum's quadratic form. The
        quadratic form is exact for every model, with or without error factors: the same
        log-density of the labels up to a constant (all pixels count; it differs from
        "pixels" only by rounding, about 1e-12 of chi^2), at O(k^2) instead of
        O(n_pixels k) per gradient, so it is the default; "pixels" remains for checking it.
    sampler : str, optional
        A registered back end (:data:`skcannon.inference.samplers.SAMPLERS`: "nutpie",
        "pymc", "emcee", ...); default nutpie when installed, else PyMC.
    fit_rv : bool, default=False
        Sample a radial velocity (km/s, + = redshift; uniform prior within ``rv_bounds``)
        with the labels; the draws and summaries gain ``RV``.
    rv_bounds : tuple of float, default=(-400.0, 400.0)
        The velocity bounds, km/s.
    continuum_order : int or None, default=None
        Multiply the model by a Legendre polynomial of this order per chip, its coefficients
        marginalized analytically under a flat prior (not sampled).
    fixed : dict of str to float, default=None
        Labels held at the given values, not sampled (reported, every draw the value).

    With ``fit_rv``, ``continuum_order`` or ``fixed`` the posterior is the pixel likelihood
    of :mod:`skcannon.inference.posterior_nuisance` (the quadratic closed form no longer
    holds; ``likelihood`` is then "pixels"), the chains start at the joint optimizer's best fit
    (``initial`` is not used), and a back end must accept ``nuisance=`` (nutpie, pymc,
    emcee do). Without them, the classic posterior, unchanged.

    Attributes
    ----------
    names : list of str
        The reported variables: the labels, then ``RV`` with ``fit_rv``.
    priors : str
        The priors, in words.
    backend : object
        The back end (built once: a PyMC-based one compiles its model once).
    """

    def __init__(self, model, prior: str = "uniform", likelihood: str = "quadratic",
                 sampler: str | None = None, *, fit_rv: bool = False,
                 rv_bounds=DEFAULT_RV_BOUNDS, continuum_order: int | None = None,
                 fixed: dict | None = None) -> None:
        self.sampler = default_sampler() if sampler is None else sampler
        backend = sampler_class(self.sampler)
        self.state = getattr(model, "state_", model)
        self.prior = prior
        self.label_priors = LabelPriors.of(self.state, prior)
        check_choice("likelihood", likelihood, LIKELIHOODS)
        self.nuisance = nuisance_setup(self.state, self.label_priors, fit_rv=fit_rv,
                                       rv_bounds=rv_bounds, continuum_order=continuum_order,
                                       fixed=fixed)
        self.likelihood = likelihood if self.nuisance is None else "pixels"
        self.names = list(self.label_priors.names)
        self.bounds = self.label_priors.bounds
        self.priors = self.label_priors.describe()
        if self.nuisance is None:                       # the classic posterior, as before
            self.backend = backend(self.state, self.label_priors, likelihood)
            return
        self.names = self.nuisance.names
        self.priors = _nuisance_priors(self.nuisance)
        self.backend = backend(self.state, self.label_priors, "pixels",
                               nuisance=self.nuisance)

    @property
    def sampled(self) -> list[str]:
        """The sampled variables (the labels not fixed, then ``RV`` with ``fit_rv``)."""
        return self.names if self.nuisance is None else self.nuisance.sampled

    @property
    def pymc_model(self):
        """The PyMC model of a PyMC-based back end (ValueError for another)."""
        model = getattr(self.backend, "pymc_model", None)
        if model is None:
            raise ValueError(f"sampler {self.sampler!r} builds no PyMC model")
        return model

    def problem(self, flux: np.ndarray, ivar: np.ndarray, fixed: dict | None = None):
        """The log-posterior of one normalized spectrum (on the model grid): a
        :class:`LogPosterior`, or with the #24 options a
        :class:`~skcannon.inference.posterior_nuisance.NuisancePosterior` (``fixed``: this
        spectrum's values of the fixed labels, default those given at construction)."""
        if self.nuisance is not None:
            return NuisancePosterior(self.nuisance, np.asarray(flux, float),
                                     np.asarray(ivar, float), fixed)
        return LogPosterior(self.state, flux, ivar, prior=self.label_priors,
                            likelihood=self.likelihood)

    def spectrum_data(self, flux: np.ndarray, ivar: np.ndarray) -> dict[str, np.ndarray]:
        """The model's data for one normalized spectrum (on the model grid), by name."""
        return self.problem(flux, ivar).data

    def set_spectrum(self, flux: np.ndarray, ivar: np.ndarray) -> None:
        """Make one normalized spectrum (on the model grid) the PyMC model's data."""
        import pymc as pm

        with self.pymc_model:
            pm.set_data(self.spectrum_data(flux, ivar))

    def sample(self, flux: np.ndarray, ivar: np.ndarray, draws: int = 1000, tune: int = 1000,
               chains: int = 4, seed: int = 0, cores: int | None = None,
               initial: np.ndarray | None = None, progressbar: bool = False,
               fixed: dict | None = None) -> Posterior:
        """Samples of one normalized spectrum's posterior.

        Parameters
        ----------
        flux, ivar : ndarray, shape (n_pixels,)
            On the model grid.
        draws, tune, chains : int, default=1000, 1000, 4
            Draws kept and tuning steps per chain, and chains (emcee: walkers, at least 4
            per label).
        seed : int, default=0
        cores : int, optional
            Processes of PyMC's sampler (default: min(chains, 2)); other back ends ignore it.
        initial : ndarray, shape (n_labels,), optional
            Physical labels to start the chains at, e.g. the optimizer's best fit.
        progressbar : bool, default=False
        fixed : dict of str to float, optional
            This spectrum's values of the labels fixed at construction (default: those).

        Returns
        -------
        Posterior
        """
        problem = self.problem(flux, ivar, fixed)
        idata = self.backend.draw(problem, draws=draws, tune=tune,
                                  chains=chains, seed=seed, initial=initial,
                                  progressbar=progressbar, cores=cores)
        if self.nuisance is not None:
            _add_fixed(idata, problem.fixed_values)
        return summarize(idata, self.names, chains, self.priors, sampled=self.sampled)


def _nuisance_priors(setup) -> str:
    """The priors of a posterior with the #24 options, in words."""
    words = [setup.priors.describe()]
    if setup.fit_rv:
        low, high = setup.rv_bounds
        words.append(f"RV ~ Uniform({low:.4g}, {high:.4g}) km/s (sampled within "
                     f"{SHIFT_WINDOW:g} pixels of the joint fit's whole-pixel RV)")
    if setup.continuum_order is not None:
        words.append(f"per-chip continuum of order {setup.continuum_order}: flat prior, "
                     "marginalized")
    words += [f"{name} = {value:.6g} (fixed)" for name, value in setup.fixed.items()]
    return "; ".join(words)


def _add_fixed(idata, fixed: dict) -> None:
    """Fixed labels as constant draws in ``idata``'s posterior (a back end that samples
    only the free variables leaves them out)."""
    post = idata.posterior
    shape = (post.sizes["chain"], post.sizes["draw"])
    for name, value in fixed.items():
        if name not in post:
            post[name] = (("chain", "draw"), np.full(shape, value))


def summarize(idata, names, chains: int, priors: str, sampled=None) -> Posterior:
    """The :class:`Posterior` of draws ``idata`` (arviz.InferenceData with one variable per
    label in ``names`` and ``diverging`` sample stats): summary with percentiles, divergences,
    and warnings on R-hat, ESS (per requested ``chains``) and divergences of the ``sampled``
    variables (default: all of ``names``; fixed labels: sd 0, R-hat and ESS NaN)."""
    import arviz as az

    sampled = list(names) if sampled is None else list(sampled)
    summary = az.summary(idata, var_names=sampled, round_to="none",
                         stat_focus="mean")[["mean", "sd", "r_hat", "ess_bulk", "ess_tail"]]
    summary = summary.reindex(list(names))
    constant = [n for n in names if n not in sampled]
    summary.loc[constant, "mean"] = [float(idata.posterior[n].values.flat[0])
                                     for n in constant]
    summary.loc[constant, "sd"] = 0.0
    draws_all = np.column_stack([idata.posterior[n].values.reshape(-1) for n in names])
    for q in (16, 50, 84):
        summary[f"p{q}"] = np.percentile(draws_all, q, axis=0)
    divergences = int(idata.sample_stats["diverging"].values.sum())
    warnings = []
    if (summary["r_hat"] > MAX_R_HAT).any():
        bad = ", ".join(summary.index[summary.r_hat > MAX_R_HAT])
        warnings.append(f"R-hat above {MAX_R_HAT} for {bad}")
    if (summary["ess_bulk"] < MIN_ESS_PER_CHAIN * chains).any():
        warnings.append(f"bulk ESS below {MIN_ESS_PER_CHAIN} per chain for "
                        + ", ".join(summary.index[summary.ess_bulk < MIN_ESS_PER_CHAIN * chains]))
    if divergences:
        warnings.append(f"{divergences} divergent transitions")
    return Posterior(idata, summary, divergences, warnings, priors)


def sample_many(sampler: CannonPosterior, flux: np.ndarray, ivar: np.ndarray, *,
                ids=None, initial: np.ndarray | None = None, draws: int = 1000,
                tune: int = 1000, chains: int = 4, seed: int = 0,
                progress: bool = False, fixed: dict | None = None) -> pd.DataFrame:
    """Posteriors of many spectra with one compiled model (only the data change per star).

    Parameters
    ----------
    sampler : CannonPosterior
    flux, ivar : ndarray, shape (n_stars, n_pixels)
    ids : sequence of str, optional  (default: row numbers)
    initial : ndarray, shape (n_stars, n_labels), optional  e.g. the optimizer's best fits
    progress : bool  a progress bar over stars on stderr
    fixed : dict of str to ndarray of shape (n_stars,), optional
        Per-star values of the labels the sampler holds fixed.

    Returns
    -------
    DataFrame, one row per star: ``ID``, per label ``<L>_MEAN``, ``_SD``, ``_P16``, ``_P50``,
    ``_P84``, ``_RHAT``, ``_ESS`` (with ``fit_rv`` also for ``RV``, and ``RV``/``RV_ERR``:
    its posterior mean and sd, km/s, named as the fit table's columns); ``DIVERGENCES``,
    ``CONVERGED`` (R-hat <= 1.01, bulk ESS >= 100 per chain, no divergence) and ``WARNINGS``
    (why not).
    """
    import sys

    from tqdm.auto import tqdm

    ids = [f"row {n}" for n in range(len(flux))] if ids is None else list(ids)
    rows = []
    for n in tqdm(range(len(flux)), desc="posteriors", unit="star", file=sys.stderr,
                  disable=not progress):
        post = sampler.sample(flux[n], ivar[n], draws=draws, tune=tune, chains=chains,
                              seed=seed + n, initial=None if initial is None else initial[n],
                              fixed=None if fixed is None else {k: float(v[n])
                                                                for k, v in fixed.items()})
        row = {"ID": ids[n]}
        for name in sampler.names:
            stats = post.summary.loc[name]
            row.update({f"{name}_MEAN": stats["mean"], f"{name}_SD": stats["sd"],
                        f"{name}_P16": stats["p16"], f"{name}_P50": stats["p50"],
                        f"{name}_P84": stats["p84"], f"{name}_RHAT": stats["r_hat"],
                        f"{name}_ESS": stats["ess_bulk"]})
        if RV_NAME in post.summary.index:             # as the fit table's RV, RV_ERR
            row.update({"RV": post.summary.loc[RV_NAME, "mean"],
                        "RV_ERR": post.summary.loc[RV_NAME, "sd"]})
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
                          "posterior_sd": posterior.summary.loc[list(names), "sd"].to_numpy(),
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
