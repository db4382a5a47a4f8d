"""Report sections of a run's own steps: selection, cross-validation, outliers, labels and the
posterior (the science figures are in :mod:`skcannon.report.science`)."""

from __future__ import annotations

import pandas as pd

from skcannon.report.html import Section

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
    return Section("Selection", "How many stars each cut removed.",
                   tables=[(pd.DataFrame(cut_table), "")], note="; ".join(notes))


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


def posterior_section(outputs) -> Section:
    """The posterior of one star: priors, summary, uncertainties compared, corner plot
    (``outputs``: :class:`skcannon.pipeline.stages.PosteriorOutputs`).

    Parameters
    ----------
    outputs : PosteriorOutputs
        Its ``posterior``, ``star``, ``chains``, ``draws``, ``comparison`` and ``corner``
        are shown.

    Returns
    -------
    Section
    """
    posterior = outputs.posterior
    summary = posterior.summary.reset_index(names="label")
    return Section(
        f"Posterior of {outputs.star}", f"Priors: {posterior.priors}. NUTS, "
        f"{outputs.chains} chains x {outputs.draws} draws, {posterior.divergences} "
        "divergences. The posterior sd equals the optimizer's formal uncertainty (the "
        "likelihood is nearly Gaussian); both are several times smaller than the "
        "cross-validation scatter, which also holds the model's own error (trained on a "
        "finite, noisy set), label noise in the training set and correlated pixel errors that "
        "the per-pixel likelihood ignores.",
        note="; ".join(posterior.warnings),
        tables=[(summary, "Posterior summary"), (outputs.comparison, "Uncertainties compared")],
        figures=[(str(outputs.corner), "Posterior draws; red: the optimizer's best fit.")])
