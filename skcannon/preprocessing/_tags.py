"""scikit-learn tags shared by the spectra transformers: 3-D input, never 2-D."""

from __future__ import annotations


def spectra_tags(tags, allow_nan: bool = False):
    """Tags for estimators taking (n_stars, 3, n_pixels) spectra arrays."""
    tags.input_tags.two_d_array = False
    tags.input_tags.three_d_array = True
    tags.input_tags.allow_nan = allow_nan
    return tags
