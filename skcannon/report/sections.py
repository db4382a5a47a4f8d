"""All the mission's figures and numbers for a trained model, gathered as report sections.

Used by ``skcannon report`` and the main job. Every figure is a real PNG file; every number
says what it was measured on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from skcannon.report.html import Section


@dataclass
class ScienceInputs:
    """What the figures are drawn from (anything may be missing; its figure is then skipped
    with a note saying why)."""

    model: object                                   # fitted Cannon with wavelength_
    training: object | None = None                  # SpectralDataset the model was trained on
    validation: object | None = None                # SplitValidation
    real: object | None = None                      # SpectralDataset of real normalized spectra
    real_fit: object | None = None                  # LabelFit of ``real``
    raw_spectra: list = field(default_factory=list)  # ApStarSpectrum of the real stars
    selection: pd.DataFrame | None = None
    cuts: object | None = None                      # QualityCuts
    continuum: Path | None = None
    windows: Path | None = None                     # aspcap_l31c_masks.npy
    isochrones: Path | None = None                  # directory of MIST CSV / .iso files
    normalization_star: str | None = None
    model_star: str | None = None
    training_note: str = ""


def _save(figure, directory: Path, name: str) -> str:
    from skcannon.plotting import save_figure

    return str(save_figure(figure, directory / name))


def science_sections(inputs: ScienceInputs, directory: str | Path) -> tuple[list[Section], dict]:
    """Draw every figure into ``directory``; return report sections and headline numbers."""
    from skcannon.data.isochrones import IsochroneNotFound, load_isochrone, teff_on_giant_branch
    from skcannon.plotting.science import (
        corner_figure,
        gradient_figure,
        kiel_figure,
        scatter_figure,
        sequence_figure,
    )
    from skcannon.plotting.validation import model_vs_data_figure

    directory = Path(directory)
    model = inputs.model
    names = list(model.label_names)
    sections: list[Section] = []
    numbers: dict = {}

    # 1. corner plot of the sample's labels with the cut thresholds
    sample = inputs.training.labels if inputs.training is not None else None
    if sample is not None:
        sections.append(Section(
            "Label distribution", "Corner plot of the training sample's labels; dashed red "
            "lines: the selection's cut thresholds (TEFF max, LOGG max, FE_H min).",
            figures=[(_save(corner_figure(sample, names, inputs.cuts), directory, "corner.png"),
                      "Labels of the training sample.")], note=inputs.training_note))

    # 2. normalization diagnostic for a named star (any id)
    if inputs.raw_spectra and inputs.continuum is not None:
        from skcannon.data.build import default_preprocessor
        from skcannon.plotting import normalization_figure
        from skcannon.spectra import stack_spectra

        wanted = inputs.normalization_star
        chosen = [s for s in inputs.raw_spectra if s.apogee_id == wanted] or inputs.raw_spectra
        note = "" if not wanted or chosen[0].apogee_id == wanted else (
            f"{wanted} is not among the downloaded spectra; showing {chosen[0].apogee_id}.")
        spectrum = chosen[0]
        pre = default_preprocessor(inputs.continuum).fit(
            stack_spectra(spectrum.flux, spectrum.ivar, pixmask=spectrum.pixmask))
        sections.append(Section(
            "Normalization", note=note, figures=[(
                _save(normalization_figure(spectrum, pre), directory,
                      f"normalization_{spectrum.apogee_id}.png"),
                f"{spectrum.apogee_id}: raw flux with continuum pixels (orange), the fitted "
                "per-chip pseudo-continuum, and the normalized flux with its 1-sigma band.")]))

    # 3. model vs data: a labelled star at its reference labels, real stars at fitted labels
    figures = []
    if inputs.validation is not None and inputs.training is not None:
        ids = inputs.training.ids[inputs.validation.test_index]
        k = int(np.flatnonzero(ids == inputs.model_star)[0]) if inputs.model_star in ids else 0
        n = inputs.validation.test_index[k]
        figures.append((_save(model_vs_data_figure(
            inputs.training.wavelength, inputs.training.flux[n], inputs.training.ivar[n],
            model.predict(inputs.validation.reference[k : k + 1])[0],
            title=f"{ids[k]} (test half): model at its reference labels",
            model_label="model at reference labels"), directory, "model_vs_data_reference.png"),
            f"{ids[k]}: normalized data with its 1-sigma band and the model predicted from its "
            "reference labels, 16000-16100 Angstrom; residuals below."))
    if inputs.real is not None and inputs.real_fit is not None:
        for n, star in enumerate(inputs.real.ids):
            figures.append((_save(model_vs_data_figure(
                inputs.real.wavelength, inputs.real.flux[n], inputs.real.ivar[n],
                model.predict(inputs.real_fit.labels[n : n + 1])[0],
                title=f"{star}: model at fitted labels", model_label="model at fitted labels"),
                directory, f"model_vs_data_{star}.png"),
                f"{star} (real DR17 spectrum): data and the model at its fitted labels."))
    if figures:
        sections.append(Section("Model vs data", figures=figures))

    # 4. gradient spectra with Mg and Si windows, s^2, and the window-enrichment numbers
    windows = None
    if inputs.windows is not None and Path(inputs.windows).is_file():
        from skcannon.apogee.windows import load_element_windows, window_enrichment

        windows = load_element_windows(inputs.windows, model.wavelength_)
    point = model.scaling_.offsets if sample is None else sample[names].median().to_numpy()
    gradient = model.gradient(point[None])[0]
    rows = []
    if windows is not None:
        for name in names:
            for element in {"MG_FE": ["Mg"], "SI_FE": ["Si"], "ALPHA_M": ["Mg", "Si"]}.get(
                    name, []):
                result = window_enrichment(gradient[names.index(name)], windows[element],
                                           model.pixel_mask_, top_n=100)
                rows.append({"label": name, "element windows": element, **result})
                numbers[f"window_fraction_{name}_{element}"] = result["fraction"]
    sections.append(Section(
        "Gradient spectra and intrinsic scatter",
        f"df/dlabel at the sample's median labels ({_format_labels(names, point)}); ASPCAP "
        "element windows shaded on the element panels. The table answers whether the "
        "100 pixels with the largest |gradient| fall in the element's windows more often "
        "than by chance.",
        tables=[(pd.DataFrame(rows), "Top-100 |gradient| pixels in element windows vs chance")]
        if rows else [],
        figures=[(_save(gradient_figure(model, point, windows), directory, "gradients.png"),
                  "Gradient spectra, one panel per label, chips separated."),
                 (_save(scatter_figure(model, windows), directory, "scatter.png"),
                  "Intrinsic scatter s per pixel with the Mg and Si windows.")]))

    # 5. Kiel diagram with MIST isochrones
    isochrones, note = {}, ""
    for feh in (0.0, -1.0):
        try:
            isochrones[f"MIST 6 Gyr, [Fe/H] = {feh:+.1f}"] = load_isochrone(
                feh, 6.0, inputs.isochrones)
        except IsochroneNotFound as exc:
            note = str(exc)
    if inputs.validation is not None and {"TEFF", "LOGG", "FE_H"} <= set(names):
        fitted = inputs.validation.fit.labels
        i_t, i_g, i_f = names.index("TEFF"), names.index("LOGG"), names.index("FE_H")
        sections.append(Section("Kiel diagram", note=note, figures=[(_save(kiel_figure(
            fitted[:, i_t], fitted[:, i_g], fitted[:, i_f], isochrones,
            title="fitted labels of the test half"), directory, "kiel.png"),
            "log g vs Teff of the fitted labels (Teff increasing to the left, log g downward), "
            "coloured by fitted [Fe/H], with MIST v1.2 isochrones.")]))

    # 6. spectra sequences
    base = dict(zip(names, point, strict=True))
    fehs = np.linspace(-1.0, 0.5, 7)
    def at(values: dict) -> np.ndarray:
        return np.array([values[n] for n in names])

    labels_a = np.array([at(base | {"TEFF": 4700.0, "LOGG": 2.5, "FE_H": f}) for f in fehs])
    loggs = np.linspace(3.5, 0.5, 7)
    solar = "MIST 6 Gyr, [Fe/H] = +0.0"
    if solar in isochrones:
        teffs = teff_on_giant_branch(isochrones[solar], loggs)
        how = "Teff from the MIST 6 Gyr [Fe/H] = 0 giant branch"
    else:
        fit_t = np.polyfit(sample["LOGG"], sample["TEFF"], 1) if sample is not None \
            else np.array([300.0, 3950.0])
        teffs = np.polyval(fit_t, loggs)
        how = f"Teff from a linear fit to the training giants: Teff = {fit_t[0]:.0f} log g + " \
              f"{fit_t[1]:.0f}"
    labels_b = np.array([at(base | {"TEFF": t, "LOGG": g, "FE_H": 0.0})
                         for t, g in zip(teffs, loggs, strict=True)])
    sections.append(Section("Spectra sequences", figures=[
        (_save(sequence_figure(model, labels_a, fehs, "[Fe/H]",
                               title="[Fe/H] from -1 to +0.5 at Teff 4700 K, log g 2.5"),
               directory, "sequence_feh.png"),
         "Model spectra, 16000-16200 Angstrom, offset and coloured by [Fe/H]."),
        (_save(sequence_figure(model, labels_b, loggs, "log g",
                               title=f"giant branch at [Fe/H] = 0, log g 3.5 to 0.5 ({how})"),
               directory, "sequence_giant_branch.png"),
         f"Model spectra along the giant branch; {how}.")]))
    return sections, numbers


def _format_labels(names, values) -> str:
    return ", ".join(f"{n} {v:.3g}" for n, v in zip(names, values, strict=True))
