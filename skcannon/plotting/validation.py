"""Cross-validation figures: one-to-one with residuals, pull distributions, data vs model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from skcannon.labels import LABEL_TEX, label_axis_name
from skcannon.plotting.common import new_figure, spectral_axis
from skcannon.stats import robust_scatter


def one_to_one_figure(reference: np.ndarray, inferred: np.ndarray, label_names: Sequence[str],
                      *, color=None, color_label: str = "SNR", title: str | None = None):
    """Per label: inferred vs reference with the 1:1 line, and residuals in a panel below.

    Parameters
    ----------
    reference, inferred : ndarray of shape (n_stars, n_labels)
    label_names : sequence of str of length n_labels
    color : ndarray of shape (n_stars,), default=None
        Colours the points (e.g. SNR); None: one colour.
    color_label : str, default="SNR"
        Colour-bar label.
    title : str, default=None
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Two rows (values, residuals) of one column per label; each panel's title gives the
        bias, scatter and robust scatter.
    """
    n = len(label_names)
    figure = new_figure_grid(n)
    axes = figure.subplots(2, n, gridspec_kw={"height_ratios": [3, 1]}, squeeze=False)
    for i, name in enumerate(label_names):
        top, bottom = axes[0, i], axes[1, i]
        x, y = reference[:, i], inferred[:, i]
        ok = np.isfinite(x) & np.isfinite(y)
        lo, hi = np.nanmin(np.r_[x[ok], y[ok]]), np.nanmax(np.r_[x[ok], y[ok]])
        style = {"color": "C0"} if color is None else {"c": color[ok], "cmap": "viridis"}
        points = top.scatter(x[ok], y[ok], s=4, lw=0, **style)
        top.plot([lo, hi], [lo, hi], color="k", lw=0.8)
        d = y[ok] - x[ok]
        robust = robust_scatter(d)
        top.set_title(f"bias {np.mean(d):+.3g}, scatter {np.std(d):.3g}\n"
                      f"robust scatter {robust:.3g}", fontsize=8)
        top.set_ylabel(f"inferred {label_axis_name(name)}", fontsize=8)
        bottom.scatter(x[ok], d, s=3, color="0.3", lw=0)
        bottom.axhline(0, color="k", lw=0.8)
        bottom.set_xlabel(f"reference {label_axis_name(name)}", fontsize=8)
        bottom.set_ylabel("inferred - ref.", fontsize=8)
        top.sharex(bottom)
        top.tick_params(labelbottom=False, labelsize=7)
        bottom.tick_params(labelsize=7)
    if color is not None:
        figure.colorbar(points, ax=axes[0, :].tolist(), label=color_label, shrink=0.8)
    if title:
        figure.suptitle(title, fontsize=10)
    return figure


def new_figure_grid(n_columns: int):
    """An empty constrained-layout Figure sized for ``n_columns`` label columns.

    Parameters
    ----------
    n_columns : int

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    return Figure(figsize=(2.6 * n_columns + 1.0, 4.6), layout="constrained")


def pull_figure(pull: np.ndarray, label_names: Sequence[str]):
    """Histograms of (fit - ref) / sqrt(sigma_fit^2 + sigma_ref^2) with a unit Gaussian.

    Parameters
    ----------
    pull : ndarray of shape (n_stars, n_labels)
        The pulls (:func:`skcannon.evaluation.pulls`); non-finite ones are left out, the rest
        clipped to +-5.
    label_names : sequence of str of length n_labels

    Returns
    -------
    matplotlib.figure.Figure
        One panel per label, titled with the pulls' standard deviation and robust scatter.
    """
    figure, axes = new_figure(1, len(label_names), width=2.4 * len(label_names), height=2.6)
    grid = np.linspace(-5, 5, 201)
    for i, name in enumerate(label_names):
        ax = axes[0, i]
        values = pull[:, i][np.isfinite(pull[:, i])]
        ax.hist(np.clip(values, -5, 5), bins=40, range=(-5, 5), density=True, color="tab:blue",
                alpha=0.7)
        ax.plot(grid, np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi), color="k", lw=1)
        robust = robust_scatter(values)
        ax.set_title(f"{LABEL_TEX.get(name, name)}: sd {np.std(values):.2f}, "
                     f"robust {robust:.2f}", fontsize=8)
        ax.set_xlabel("pull", fontsize=8)
    axes[0, 0].set_ylabel("density")
    return figure


def model_vs_data_figure(wavelength: np.ndarray, flux: np.ndarray, ivar: np.ndarray,
                         model_flux: np.ndarray, *,
                         window: tuple[float, float] | None = (16000, 16100),
                         title: str = "", model_label: str = "model", ax=None,
                         axis_label: str = r"vacuum wavelength ($\AA$)"):
    """Normalized data with its 1-sigma band, a model spectrum, and residuals, over a window.

    Parameters
    ----------
    wavelength : ndarray of shape (n_pixels,) or None
        None (a model trained from bare arrays): the x axis is the pixel index and every pixel
        is drawn.
    flux, ivar : ndarray of shape (n_pixels,)
        The star's normalized flux and inverse variance (pixels with ivar 0 are not drawn).
    model_flux : ndarray of shape (n_pixels,)
    window : tuple of float or None, default=(16000, 16100)
        Wavelength range drawn; None: every pixel.
    title : str, default=""
        Title of the top panel (none when empty).
    model_label : str, default="model"
        Legend entry of the model spectrum.
    ax : pair of Axes, default=None
        (top, bottom) axes to draw into; None: a new figure.
    axis_label : str, default=``"vacuum wavelength ($\\AA$)"``
        Names the x axis (e.g. "pixel" for spectra without recorded wavelengths).

    Returns
    -------
    matplotlib.figure.Figure
        The figure of ``ax`` when given.
    """
    if ax is None:
        figure, axes = new_figure(2, 1, width=8, height=1.8, sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1]})
        top, bottom = axes[:, 0]
    else:
        top, bottom = ax
        figure = top.figure
    if wavelength is None:                      # every pixel, on the pixel index
        wavelength, axis_label, _ = spectral_axis(None, len(flux))
        window = None
    inside = (np.ones(wavelength.shape, bool) if window is None
              else (wavelength >= window[0]) & (wavelength <= window[1]))
    good = inside & (ivar > 0)
    w = wavelength[inside]
    data = np.where(good, flux, np.nan)[inside]
    sigma = np.where(good, 1 / np.sqrt(np.where(good, ivar, 1)), np.nan)[inside]
    top.fill_between(w, data - sigma, data + sigma, color="0.7", lw=0, step="mid")
    top.step(w, data, where="mid", color="k", lw=0.7, label="data")
    top.plot(w, model_flux[inside], color="tab:red", lw=0.9, label=model_label)
    top.set_ylabel("normalized flux")
    top.legend(fontsize=7, loc="lower left", frameon=False)
    bottom.step(w, data - model_flux[inside], where="mid", color="k", lw=0.6)
    bottom.axhline(0, color="tab:red", lw=0.8)
    bottom.set_ylabel("data - model", fontsize=8)
    bottom.set_xlabel(axis_label)
    if title:
        top.set_title(title, fontsize=9)
    return figure
