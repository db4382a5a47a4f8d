"""Report sections of a run's own steps: selection, cross-validation, outliers, labels and the
posterior (the science figures are in :mod:`skcannon.report.science`)."""

from __future__ import annotations

import pandas as pd

from skcannon.report.html import Section
from skcannon.report.wording import compare

#: Outliers listed in the report at most.
MAX_OUTLIER_ROWS = 30


def selection_section(cut_table: list[dict], notes: list[str]) -> Section:
    """How many stars each cut removed.

    Parameters
    ----------
    cut_table : list of dict
        One ``{"cut", "removed", "remaining"}`` row per cut (``.attrs["cut_table"]`` of
        :func:`skcannon.apogee.catalog.select_giants`'s selection).
    notes : list of str
        Joined into the section's note.

    Returns
    -------
    Section
    """
    return Section("Selection", "How many stars each cut removed. " + giant_gravity_sentence(),
                   tables=[(pd.DataFrame(cut_table), "")], note="; ".join(notes))


#: Radii (solar) at which the selection section states a solar-mass star's log g.
GRAVITY_RADII = (1.0, 15.0, 100.0)


def giant_gravity_sentence() -> str:
    """What the log g cut means: the log g of a solar-mass star at :data:`GRAVITY_RADII`,
    computed by :func:`skcannon.data.isochrones.surface_gravity`.

    Returns
    -------
    str
        E.g. "A solar-mass star has log g 4.44 at 1 R_sun, 2.09 at 15 R_sun and 0.44 at 100
        R_sun."
    """
    from skcannon.data.isochrones import surface_gravity

    loggs = surface_gravity(1.0, GRAVITY_RADII)
    parts = [f"{g:.2f} at {r:g} R_sun" for g, r in zip(loggs, GRAVITY_RADII, strict=True)]
    return f"A solar-mass star has log g {', '.join(parts[:-1])} and {parts[-1]}."


def cross_validation_section(validation, figures: dict[str, str], caption: str,
                             note: str = "") -> Section:
    """Bias and scatter per label on the test half, by SNR, the one-to-one and pull figures.

    Parameters
    ----------
    validation : SplitValidation
        Its ``accuracy`` and ``by_snr`` tables are shown.
    figures : dict of str to str
        Maps "one_to_one" and "pulls" to their files (see
        :class:`skcannon.pipeline.stages.ValidationOutputs`).
    caption : str
    note : str, default=""

    Returns
    -------
    Section
    """
    return Section(
        "Cross-validation", caption, note=note,
        tables=[(validation.accuracy, "Test half"), (validation.by_snr, "By SNR")],
        figures=[(figures["one_to_one"], "Fitted vs reference labels with the 1:1 line; "
                                         "residuals below; colour: SNR."),
                 (figures["pulls"], "Pulls (fit - reference) / sigma: a unit Gaussian means "
                                    "honest uncertainties.")])


def real_validation_section(outputs) -> Section:
    """Cross-validation on real labelled spectra (``outputs``:
    :class:`skcannon.pipeline.stages.RealValidation`), the report's first yardstick.

    Parameters
    ----------
    outputs : RealValidation
        Its ``n_stars``, ``n_pixels``, ``source``, ``summary`` and ``figure`` are shown.

    Returns
    -------
    Section
    """
    return Section(
        "Cross-validation on real spectra",
        f"Repeated k-fold cross-validation of the default Cannon on {outputs.n_stars} real "
        f"APOGEE giants ({outputs.n_pixels} pixels each, ASPCAP labels): each star's labels "
        "are inferred by a model that never saw it. Mean over repeats, and the spread (sd) "
        "between repeats.",
        note=f"Data source: {outputs.source} (real spectra).",
        tables=[(outputs.summary, "Held-out accuracy (fitted - ASPCAP)")],
        figures=[(outputs.figure, "Held-out fitted vs ASPCAP labels (first repeat), 1:1 line; "
                                  "residuals below.")])


def outliers_section(outliers: pd.DataFrame, k: float) -> Section:
    """Test-half stars off by more than ``k`` robust scatters, with their explanations.

    Parameters
    ----------
    outliers : DataFrame
        From :func:`skcannon.evaluation.find_outliers`; the first :data:`MAX_OUTLIER_ROWS`
        rows are listed.
    k : float
        The threshold the outliers were found with.

    Returns
    -------
    Section
    """
    return Section("Outliers", f"Test-half stars off by more than {k:g} robust scatters: "
                   f"{len(outliers)}.",
                   tables=[(outliers.head(MAX_OUTLIER_ROWS), "")] if len(outliers) else [])


def labels_section(star_labels: pd.DataFrame) -> Section:
    """The fitted labels of the real spectra.

    Parameters
    ----------
    star_labels : DataFrame
        One row per star.

    Returns
    -------
    Section
    """
    return Section("Labels of the real spectra", tables=[(star_labels, "")])


def posterior_sentences(comparison: pd.DataFrame) -> str:
    """Per label, the posterior sd compared with the optimizer's formal uncertainty and with
    the cross-validation scatter, in words computed from the numbers of ``comparison``.

    Parameters
    ----------
    comparison : DataFrame
        :func:`skcannon.inference.mcmc.posterior_comparison`'s table: ``label``,
        ``posterior_sd``, ``optimizer_sigma`` and, when present, ``cv_scatter``.

    Returns
    -------
    str
        One sentence per label, e.g. "TEFF: the posterior sd (12.1) is equal (within 3 %) to
        the optimizer's formal uncertainty (11.8); the posterior sd (12.1) is 4.1 times smaller
        than the cross-validation scatter (49.6)."
    """
    sentences = []
    for row in comparison.to_dict("records"):
        parts = [compare(row["posterior_sd"], row["optimizer_sigma"], "the posterior sd",
                         "the optimizer's formal uncertainty").rstrip(".")]
        if "cv_scatter" in row:
            parts.append(compare(row["posterior_sd"], row["cv_scatter"], "the posterior sd",
                                 "the cross-validation scatter").rstrip("."))
        sentences.append(f"{row['label']}: " + "; ".join(parts) + ".")
    return " ".join(sentences)


def posterior_section(outputs) -> Section:
    """The posterior of one star: priors, summary, uncertainties compared (in words computed
    from the table, :func:`posterior_sentences`), corner plot; a star whose fit is on a bound or
    outside the training range is flagged: its posterior is not presented as a measurement
    (``outputs``: :class:`skcannon.pipeline.stages.PosteriorOutputs`).

    Parameters
    ----------
    outputs : PosteriorOutputs
        Its ``posterior``, ``star``, ``chains``, ``draws``, ``comparison``, ``corner``,
        ``fit_flags`` and ``source`` are shown.

    Returns
    -------
    Section
    """
    posterior = outputs.posterior
    summary = posterior.summary.reset_index(names="label")
    flags = list(getattr(outputs, "fit_flags", []))
    flag_note = ("NOT A MEASUREMENT: the optimizer's fit of this star is flagged ("
                 + "; ".join(flags) + "), so the posterior piles up where the prior or the "
                 "training range ends; its width says nothing about the star's labels."
                 ) if flags else ""
    source = getattr(outputs, "source", "")
    return Section(
        f"Posterior of {outputs.star}", (f"Data source: {source}. " if source else "")
        + f"Priors: {posterior.priors}. NUTS, {outputs.chains} chains x {outputs.draws} "
        f"draws, {posterior.divergences} divergences. "
        + posterior_sentences(outputs.comparison) + " The cross-validation scatter also holds "
        "the model's own error, label noise in the training set and correlated pixel errors "
        "that the per-pixel likelihood ignores.",
        note="; ".join([flag_note, *posterior.warnings]).strip("; "),
        tables=[(summary, "Posterior summary"), (outputs.comparison, "Uncertainties compared")],
        figures=[(str(outputs.corner), f"{outputs.star}: posterior draws; red: the "
                                       "optimizer's best fit.")])
