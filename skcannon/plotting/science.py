"""Science figures: label corner plot, gradient spectra, s^2, Kiel diagram, spectra sequences."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from skcannon.labels import LABEL_TEX, format_labels, label_axis_name
from skcannon.plotting.common import new_figure, plot_segments, spectral_axis

_WINDOW_COLOURS = {"Mg": "tab:orange", "Si": "tab:green"}


def corner_figure(labels: pd.DataFrame, label_names: Sequence[str], cuts=None):
    """Corner plot of the sample's labels, with the cut thresholds drawn as dashed lines.

    Needs the optional package ``corner``. Stars with any non-finite label are left out.

    Parameters
    ----------
    labels : DataFrame
        One row per star, with the ``label_names`` columns.
    label_names : sequence of str
        The labels to plot.
    cuts : QualityCuts, default=None
        Its max_teff, max_logg and min_feh are drawn where those labels are plotted; None: no
        thresholds.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import corner
    from matplotlib.figure import Figure

    names = list(label_names)
    data = labels[names].to_numpy(float)
    data = data[np.all(np.isfinite(data), axis=1)]
    thresholds = ({"TEFF": cuts.max_teff, "LOGG": cuts.max_logg, "FE_H": cuts.min_feh}
                  if cuts is not None else {})
    ranges = []
    for i, name in enumerate(names):   # widen each axis to show its threshold
        lo, hi = np.percentile(data[:, i], [0.5, 99.5])
        if name in thresholds:
            lo, hi = min(lo, thresholds[name]), max(hi, thresholds[name])
        pad = 0.05 * (hi - lo or 1.0)
        ranges.append((lo - pad, hi + pad))
    figure = Figure(figsize=(2.0 * len(names), 2.0 * len(names)))
    corner.corner(data, labels=[label_axis_name(n) for n in names], fig=figure, range=ranges,
                  plot_datapoints=True, plot_density=False, plot_contours=len(data) > 50,
                  data_kwargs={"ms": 1.5, "alpha": 0.4}, label_kwargs={"fontsize": 8})
    if thresholds:
        axes = np.array(figure.axes).reshape(len(names), len(names))
        for j, name in enumerate(names):
            if name not in thresholds:
                continue
            for i in range(len(names)):
                if i >= j:
                    axes[i, j].axvline(thresholds[name], color="tab:red", ls="--", lw=0.8)
                if i < j and name in thresholds:
                    axes[j, i].axhline(thresholds[name], color="tab:red", ls="--", lw=0.8)
    return figure


def _shade_windows(ax, wavelength, windows: Mapping[str, np.ndarray]) -> None:
    for element, mask in windows.items():
        edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(int), 0]))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            ax.axvspan(wavelength[start], wavelength[stop - 1], color=_WINDOW_COLOURS.get(
                element, "tab:purple"), alpha=0.35, lw=0,
                label=f"{element} windows (ASPCAP)" if start == edges[0] else None)


def gradient_figure(model, point: np.ndarray, windows: Mapping[str, np.ndarray] | None = None,
                    marks: Mapping[str, Sequence[str]] | None = None):
    """Gradient spectra df/dlabel at ``point`` (physical labels), one panel per label
    (TEFF per 100 K, the others per dex; pixels the model excludes are not drawn).

    Parameters
    ----------
    model : Cannon
        Fitted, with ``wavelength_``.
    point : ndarray of shape (n_labels,)
        Labels, physical units.
    windows : mapping of str to ndarray of bool, shape (n_pixels,), default=None
        Element -> its window mask on the model grid; None: no windows shaded.
    marks : mapping of str to sequence of str, default=None
        Label -> elements whose windows are shaded on that label's panel; None: MG_FE -> Mg,
        SI_FE -> Si, and ALPHA_M -> Mg and Si.

    Returns
    -------
    matplotlib.figure.Figure
    """
    marks = marks if marks is not None else {"MG_FE": ["Mg"], "SI_FE": ["Si"],
                                             "ALPHA_M": ["Mg", "Si"]}
    gradient = model.gradient(np.atleast_2d(point))[0]
    wavelength, axis_label, has_wavelength = spectral_axis(model.wavelength_, gradient.shape[1])
    windows = windows if has_wavelength else None
    names = list(model.label_names)
    figure, axes = new_figure(len(names), 1, width=11, height=1.7, sharex=True)
    for i, name in enumerate(names):
        ax = axes[i, 0]
        per = 100.0 if name == "TEFF" else 1.0        # Teff gradients per 100 K, others per dex
        values = np.where(model.pixel_mask_, gradient[i] * per, np.nan)
        plot_segments(ax, wavelength, values, color="k", lw=0.5)
        if windows:
            _shade_windows(ax, wavelength, {e: windows[e] for e in marks.get(name, [])
                                            if e in windows})
            if marks.get(name):
                ax.legend(loc="lower right", fontsize=6, frameon=False)
        unit = "100 K" if name == "TEFF" else "dex"
        ax.set_ylabel(f"df/d{LABEL_TEX.get(name, name)}\n(per {unit})", fontsize=7)
    axes[-1, 0].set_xlabel(axis_label)
    axes[0, 0].set_title(f"gradient spectra at {format_labels(names, np.ravel(point))}",
                         fontsize=9)
    return figure


def scatter_figure(model, windows: Mapping[str, np.ndarray] | None = None):
    """The intrinsic variance s^2 of every pixel the model uses (log scale; s on the right
    axis), with element windows shaded.

    Parameters
    ----------
    model : Cannon
        Fitted, with ``wavelength_``.
    windows : mapping of str to ndarray of bool, shape (n_pixels,), default=None
        Element -> its window mask on the model grid; None: no windows shaded.

    Returns
    -------
    matplotlib.figure.Figure
    """
    figure, axes = new_figure(1, 1, width=11, height=2.6)
    ax = axes[0, 0]
    s2 = np.where(model.pixel_mask_, model.s2_, np.nan)
    wavelength, axis_label, has_wavelength = spectral_axis(model.wavelength_, len(s2))
    plot_segments(ax, wavelength, s2, color="k", lw=0.5)
    if windows and has_wavelength:
        _shade_windows(ax, wavelength, windows)
        ax.legend(loc="upper right", fontsize=7, frameon=False)
    ax.set_ylabel("intrinsic variance $s^2$\n(normalized flux$^2$)")
    ax.set_xlabel(axis_label)
    ax.set_yscale("log")
    right = ax.secondary_yaxis("right", functions=(lambda v: np.sqrt(np.clip(v, 0, None)),
                                                   np.square))
    right.set_ylabel("s")
    return figure


def kiel_figure(teff: np.ndarray, logg: np.ndarray, feh: np.ndarray,
                isochrones: Mapping[str, pd.DataFrame] | None = None, title: str = ""):
    """log g vs Teff (Teff increasing to the left, log g increasing downward), coloured by
    [Fe/H], with isochrones overplotted.

    Parameters
    ----------
    teff, logg, feh : ndarray of shape (n_stars,)
        Labels of the stars.
    isochrones : mapping of str to DataFrame, default=None
        Legend label -> isochrone table (columns ``Teff``, ``log_g``, ``phase``); drawn below
        log g 4.6 and Teff 7000 K, up to phase 4.
    title : str, default=""
        Axes title (none when empty).

    Returns
    -------
    matplotlib.figure.Figure
    """
    figure, axes = new_figure(1, 1, width=6, height=5)
    ax = axes[0, 0]
    points = ax.scatter(teff, logg, c=feh, s=6, cmap="plasma", lw=0)
    figure.colorbar(points, ax=ax, label="[Fe/H] (dex)")
    styles = ["-", "--", ":", "-."]
    for k, (label, table) in enumerate((isochrones or {}).items()):
        keep = (table["log_g"] < 4.6) & (table["Teff"] < 7000) & (table["phase"] < 5)
        ax.plot(table["Teff"][keep], table["log_g"][keep], color="k", lw=1,
                ls=styles[k % len(styles)], label=label)
    if isochrones:
        ax.legend(fontsize=8, loc="upper left")
    ax.set_xlim(max(5800, np.nanmax(teff) + 100), min(3500, np.nanmin(teff) - 100))
    ax.set_ylim(max(4.2, np.nanmax(logg) + 0.2), min(0.0, np.nanmin(logg) - 0.2))
    ax.set_xlabel(r"$T_\mathrm{eff}$ (K)")
    ax.set_ylabel(r"$\log g$ (dex)")
    if title:
        ax.set_title(title, fontsize=9)
    return figure


def sequence_figure(model, labels: np.ndarray, colour_values: np.ndarray, colour_label: str,
                    window: tuple[float, float] = (16000, 16200), offset: float = 0.25,
                    title: str = ""):
    """Model spectra for a sequence of label vectors, offset vertically and colour-coded.

    Parameters
    ----------
    model : Cannon
        Fitted, with ``wavelength_``.
    labels : ndarray of shape (n_steps, n_labels)
        Physical labels of each spectrum, bottom first.
    colour_values : ndarray of shape (n_steps,)
        The value each spectrum is coloured by (and labelled with).
    colour_label : str
        What ``colour_values`` are, for the default title.
    window : tuple of float, default=(16000, 16200)
        Wavelength range drawn (every pixel when none lies in it, or without a wavelength).
    offset : float, default=0.25
        Vertical offset between consecutive spectra.
    title : str, default=""
        Axes title; empty: "model spectra, coloured by <colour_label>".

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib import colormaps

    figure, axes = new_figure(1, 1, width=9, height=0.55 * len(labels) + 2)
    ax = axes[0, 0]
    spectra = model.predict(labels)
    wavelength, axis_label, has_wavelength = spectral_axis(model.wavelength_, spectra.shape[1])
    inside = (wavelength >= window[0]) & (wavelength <= window[1])
    if not has_wavelength or not inside.any():     # no pixel in the window: draw them all
        window = (wavelength[0], wavelength[-1])
        inside = np.ones(wavelength.shape, bool)
    colours = colormaps["viridis"]((colour_values - np.min(colour_values))
                                   / max(np.ptp(colour_values), 1e-12))
    for k, (spectrum, colour) in enumerate(zip(spectra, colours, strict=True)):
        ax.plot(wavelength[inside], spectrum[inside] + k * offset, color=colour, lw=0.8)
        ax.text(window[1] + 0.01 * (window[1] - window[0]), 1 + k * offset,
                f"{colour_values[k]:.2f}", fontsize=7, va="center", color=colour)
    ax.set_xlim(window[0], window[1] + 0.125 * (window[1] - window[0]))
    ax.set_xlabel(axis_label)
    ax.set_ylabel(f"normalized flux + offset ({offset:g} per step)")
    ax.set_title(title or f"model spectra, coloured by {colour_label}", fontsize=9)
    return figure
