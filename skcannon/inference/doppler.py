"""The geometry a Doppler shift and a per-chip continuum need: a spectrum grid cut into
log-linear segments (the chips of a gap-removed grid), model spectra shifted on it by a
fraction of a pixel, and the continuum polynomials of each segment.

A radial velocity v moves every feature by the same step in ln(lambda), so on a grid uniform in
log10(lambda) (step ``dlog``) it is a shift of ``delta = log10(1 + v / c) / dlog`` pixels
(+ = redshift: the observed pixel p sees the rest-frame pixel p - delta). The model is shifted,
not the data: its coefficients are turned into cubic B-spline coefficients once per segment
(:func:`scipy.ndimage.spline_filter1d`), and a model spectrum -- a linear combination of them --
is then evaluated at p - delta with four taps per pixel, its derivative with respect to delta
with four more (exact cubic-spline interpolation, vectorized over stars). The spectra are first
moved by whole pixels (exact), so the model moves by at most :data:`MAX_SHIFT` pixels: a few
shifted slices shared by every star, no gathers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Speed of light, km/s.
SPEED_OF_LIGHT = 299792.458
#: A gap in a grid: a step in log10(lambda) above this many times the median step.
GAP_FACTOR = 1.5
#: Largest relative deviation of a segment's log10 steps from uniform (log-linear grid).
LOG_LINEAR_RTOL = 1e-3
#: Largest model shift (pixels) read against spectra already moved by whole pixels ...
MAX_SHIFT = 3.0
#: ... and how far (pixels) its four B-spline taps then reach.
SHIFT_REACH = 5


@dataclass(frozen=True)
class SegmentGrid:
    """A grid cut into log-linear segments.

    Attributes
    ----------
    start, stop : ndarray of int, shape (n_segments,)
        First pixel and one past the last of each segment.
    segment : ndarray of int, shape (n_pixels,)
        The segment of each pixel.
    dlog : float
        The step in log10(lambda) (NaN without a wavelength grid: no shifts then).
    """

    start: np.ndarray
    stop: np.ndarray
    segment: np.ndarray
    dlog: float

    @classmethod
    def from_wavelength(cls, wavelength: np.ndarray | None, n_pixels: int) -> SegmentGrid:
        """Segments of a grid: split where log10(lambda) jumps by more than
        :data:`GAP_FACTOR` steps (one segment, no shifts, without a grid).

        Parameters
        ----------
        wavelength : ndarray, shape (n_pixels,), or None
        n_pixels : int

        Returns
        -------
        SegmentGrid

        Raises
        ------
        ValueError
            A segment whose steps are not uniform in log10(lambda).
        """
        if wavelength is None:
            return cls(np.array([0]), np.array([n_pixels]), np.zeros(n_pixels, int), np.nan)
        steps = np.diff(np.log10(np.asarray(wavelength, float)))
        dlog = float(np.median(steps))
        cuts = np.flatnonzero(steps > GAP_FACTOR * dlog) + 1
        start, stop = np.r_[0, cuts], np.r_[cuts, n_pixels]
        inner = np.delete(steps, cuts - 1)
        if np.any(np.abs(inner - dlog) > LOG_LINEAR_RTOL * dlog):
            raise ValueError("the model's wavelength grid is not uniform in log10(wavelength) "
                             "within its segments: a Doppler shift is not a pixel shift on it")
        segment = np.repeat(np.arange(len(start)), stop - start)
        return cls(start, stop, segment, dlog)

    def velocity(self, delta: np.ndarray) -> np.ndarray:
        """Radial velocity (km/s) of a shift of ``delta`` pixels."""
        return SPEED_OF_LIGHT * (10.0 ** (np.asarray(delta) * self.dlog) - 1.0)

    def shift(self, velocity: np.ndarray) -> np.ndarray:
        """Shift in pixels of a radial velocity ``velocity`` (km/s)."""
        return np.log10(1.0 + np.asarray(velocity, float) / SPEED_OF_LIGHT) / self.dlog

    def velocity_per_pixel(self, delta: np.ndarray) -> np.ndarray:
        """d velocity / d delta (km/s per pixel) at ``delta``."""
        return SPEED_OF_LIGHT * np.log(10.0) * self.dlog * 10.0 ** (np.asarray(delta)
                                                                      * self.dlog)

    def spline_coefficients(self, values: np.ndarray) -> np.ndarray:
        """Cubic B-spline coefficients of ``values`` (n_pixels, ...) along the pixels, each
        segment on its own (mirror boundaries); same shape."""
        from scipy.ndimage import spline_filter1d

        out = np.empty_like(np.asarray(values, float))
        for a, b in zip(self.start, self.stop, strict=True):      # segments (3 chips)
            out[a:b] = spline_filter1d(values[a:b], order=3, axis=0, mode="mirror")
        return out

    def shift_weights(self, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The cubic B-spline weights that read each star's model at p - delta, for
        abs(delta) <= :data:`MAX_SHIFT` pixels.

        Parameters
        ----------
        delta : ndarray, shape (m,)
            Shifts in pixels (the spectra moved by whole pixels first: see
            :func:`skcannon.inference.nuisance.fit_labels_nuisance`).

        Returns
        -------
        weight, dweight : ndarray, shape (m, 2 * SHIFT_REACH + 1)
            Weight of the pixel p + o for offsets o = -SHIFT_REACH ... SHIFT_REACH, and its
            derivative with respect to delta.
        """
        position = -np.clip(np.asarray(delta, float), -MAX_SHIFT, MAX_SHIFT)
        base = np.floor(position)
        t = position - base
        u = 1.0 - t
        taps = (np.stack([u ** 3, 3 * t ** 3 - 6 * t ** 2 + 4,
                          -3 * t ** 3 + 3 * t ** 2 + 3 * t + 1, t ** 3], axis=1) / 6.0)
        dtaps = -np.stack([-u ** 2, 3 * t ** 2 - 4 * t, -3 * t ** 2 + 2 * t + 1, t ** 2],
                          axis=1) / 2.0                     # d/d delta = -d/d position
        column = base.astype(int)[:, None] - 1 + np.arange(4) + SHIFT_REACH
        rows = np.arange(len(t))[:, None]
        weight = np.zeros((len(t), 2 * SHIFT_REACH + 1))
        dweight = np.zeros_like(weight)
        weight[rows, column], dweight[rows, column] = taps, dtaps
        return weight, dweight

    def reachable(self, mask: np.ndarray) -> np.ndarray:
        """Pixels whose every neighbour within :data:`SHIFT_REACH` lies in their segment and in
        ``mask`` (n_pixels,): where a shifted model can be read."""
        bad = np.r_[~np.asarray(mask, bool)].astype(float)
        near = np.convolve(bad, np.ones(2 * SHIFT_REACH + 1), "same") > 0
        pixels = np.arange(self.segment.size)
        lo, hi = self.start[self.segment], self.stop[self.segment]
        return ~near & (pixels - SHIFT_REACH >= lo) & (pixels + SHIFT_REACH < hi)

    def continuum_basis(self, order: int) -> np.ndarray:
        """Legendre polynomials of degree 0..``order`` on each segment (pixel position scaled
        to [-1, 1]), zero outside it; shape (n_pixels, n_segments * (order + 1))."""
        from numpy.polynomial import legendre

        n_pixels, n_segments = self.segment.size, len(self.start)
        basis = np.zeros((n_pixels, n_segments * (order + 1)))
        for s, (a, b) in enumerate(zip(self.start, self.stop, strict=True)):
            x = np.linspace(-1.0, 1.0, b - a) if b - a > 1 else np.zeros(1)
            basis[a:b, s * (order + 1):(s + 1) * (order + 1)] = legendre.legvander(x, order)
        return basis


def apply_shift(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Spline coefficients ``values`` (m, C, n_pixels) read with the weights of
    :meth:`SegmentGrid.shift_weights` (m, 2 * SHIFT_REACH + 1): shape (m, C, n_pixels).
    Pixels within SHIFT_REACH of a segment's edge read across it (see
    :meth:`SegmentGrid.reachable`)."""
    n_pixels = values.shape[2]
    padded = np.pad(values, ((0, 0), (0, 0), (SHIFT_REACH, SHIFT_REACH)), mode="edge")
    out = np.zeros(values.shape)
    for offset in np.flatnonzero(np.any(weight != 0, axis=0)):       # at most 2 x 4 offsets
        out += weight[:, offset, None, None] * padded[:, :, offset:offset + n_pixels]
    return out
