"""Datasets: the training-set file, building one from apStar files, and simulated spectra.

* :mod:`.dataset`: :class:`SpectralDataset` and its HDF5 file;
* :mod:`.arrays`: labelled arrays of any length (npz/HDF5) and :func:`open_dataset` for either;
* :mod:`.build`: read -> preprocess -> dataset;
* :mod:`.products`: every spectrum product (apStar, aspcapStar, apVisit, normalized arrays) read
  into one form, and a model's preprocessing run on a batch of them;
* :mod:`.registry`: the product registry (one identifier and reader per product, registered
  together by the ``product_*`` modules);
* :mod:`.simulate`: labelled spectra drawn from a trained model with real noise and masks;
* :mod:`.isochrones`: MIST isochrones for the Kiel diagram and spectra sequences.
"""

from skcannon.data.arrays import LabelledArrays, load_labelled_arrays, open_dataset
from skcannon.data.dataset import SpectralDataset
from skcannon.data.products import (
    ProductSpectra,
    prepare_for_model,
    product_names,
    read_product,
    register_product,
    unregister_product,
)

__all__ = ["LabelledArrays", "ProductSpectra", "SpectralDataset", "load_labelled_arrays",
           "open_dataset", "prepare_for_model", "product_names", "read_product",
           "register_product", "unregister_product"]
