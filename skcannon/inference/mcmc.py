"""Full posteriors of the labels with PyMC (imported lazily; ``pip install skcannon[mcmc]``).

The Cannon's quadratic prediction is written in PyTensor: scaled labels -> design vector
(constant, linear terms, and all products l_i l_j with i <= j gathered by index arrays) ->
model flux = Theta v for every pixel at once. The likelihood is N(f | model, sigma^2 + s^2) over
the model's pixels; masked pixels get an effectively infinite sigma, so one compiled model serves
every spectrum (the data are swapped with ``pm.set_data``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: A masked pixel's standard deviation: large enough to carry no weight.
MASKED_SIGMA = 1e6
#: Default priors: "uniform" over the training range widened by this fraction on each side.
PRIOR_MARGIN = 0.1


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

    def __init__(self, model, prior: str = "uniform") -> None:
        import pymc as pm
        import pytensor.tensor as pt

        if prior not in ("uniform", "normal"):
            raise ValueError(f"prior must be 'uniform' or 'normal', got {prior!r}")
        self.cannon = model
        self.names = list(model.label_names)
        vectorizer = model.vectorizer_
        low, high = model.label_range_
        width = high - low
        offsets, scales = model.scaling_.offsets, model.scaling_.scales
        linear = np.array([vectorizer.terms.index((i,)) for i in range(len(self.names))])
        quad = [t for t in vectorizer.terms if len(t) == 2]
        theta = model.theta_[:, [0, *linear, *[vectorizer.terms.index(t) for t in quad]]]
        qi = np.array([t[0] for t in quad], dtype=int)
        qj = np.array([t[1] for t in quad], dtype=int)
        n_pixels = theta.shape[0]
        lines = []
        with pm.Model() as self.pymc_model:
            flux = pm.Data("flux", np.ones(n_pixels))
            sigma = pm.Data("sigma", np.ones(n_pixels))
            labels = []
            for i, name in enumerate(self.names):
                if prior == "uniform":
                    lo = low[i] - PRIOR_MARGIN * width[i]
                    hi = high[i] + PRIOR_MARGIN * width[i]
                    labels.append(pm.Uniform(name, lower=lo, upper=hi))
                    lines.append(f"{name} ~ Uniform({lo:.4g}, {hi:.4g})")
                else:
                    labels.append(pm.Normal(name, mu=offsets[i], sigma=2 * scales[i]))
                    lines.append(f"{name} ~ Normal({offsets[i]:.4g}, {2 * scales[i]:.4g})")
            scaled = (pt.stack(labels) - offsets) / scales
            parts = [pt.ones(1), scaled]
            if len(quad):
                parts.append(scaled[qi] * scaled[qj])
            design = pt.concatenate(parts)
            mean = pt.dot(theta, design)                   # all pixels at once
            pm.Normal("obs", mu=mean, sigma=sigma, observed=flux)
        self.priors = "; ".join(lines)

    def sample(self, flux: np.ndarray, ivar: np.ndarray, draws: int = 1000, tune: int = 1000,
               chains: int = 4, seed: int = 0, cores: int | None = None,
               initial: np.ndarray | None = None, progressbar: bool = False) -> Posterior:
        """NUTS samples for one normalized spectrum (``flux``, ``ivar`` on the model grid).

        ``initial`` (physical labels) starts the chains, e.g. at the optimizer's best fit.
        """
        import arviz as az
        import pymc as pm

        model = self.cannon
        good = (ivar > 0) & np.isfinite(ivar) & np.isfinite(flux) & model.pixel_mask_
        if good.sum() <= len(self.names):
            raise ValueError(f"only {good.sum()} usable pixels: cannot sample")
        sigma = np.where(good, np.sqrt(1 / np.where(good, ivar, 1) + model.s2_), MASKED_SIGMA)
        start = None
        if initial is not None:
            start = {n: float(v) for n, v in zip(self.names, np.ravel(initial), strict=True)}
        with self.pymc_model:
            pm.set_data({"flux": np.where(good, flux, 1.0), "sigma": sigma})
            idata = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed,
                              cores=cores or min(chains, 2), initvals=start,
                              progressbar=progressbar, compute_convergence_checks=False)
        summary = az.summary(idata, var_names=self.names, round_to="none",
                             stat_focus="mean")[["mean", "sd", "r_hat", "ess_bulk", "ess_tail"]]
        draws_all = np.column_stack([idata.posterior[n].values.reshape(-1) for n in self.names])
        for q in (16, 50, 84):
            summary[f"p{q}"] = np.percentile(draws_all, q, axis=0)
        divergences = int(idata.sample_stats["diverging"].values.sum())
        warnings = []
        if (summary["r_hat"] > 1.01).any():
            warnings.append(f"R-hat above 1.01 for {', '.join(summary.index[summary.r_hat > 1.01])}")
        if (summary["ess_bulk"] < 100 * chains).any():
            warnings.append("bulk ESS below 100 per chain for "
                            + ", ".join(summary.index[summary.ess_bulk < 100 * chains]))
        if divergences:
            warnings.append(f"{divergences} divergent transitions")
        return Posterior(idata, summary, divergences, warnings, self.priors)
