"""Neural-network label regressor (PyTorch + skorch), compared with the Cannon.

Needs the ``nn`` extra (``pip install "skcannon[nn]"``); importing this package imports torch.

* :mod:`.networks`: the PyTorch modules (MLP, 1-D CNN);
* :mod:`.estimator`: input channels, the skorch regressor and its training;
* :mod:`.files`: saving and loading trained networks (no pickle);
* :mod:`.compare`: the network and the Cannon on the same split.
"""

from skcannon.nn.estimator import (
    SeededNet,
    SpectraToChannels,
    default_device,
    fit_nn,
    loss_history,
    make_nn_regressor,
)
from skcannon.nn.files import NN_FORMAT_VERSION, LoadedNN, save_nn
from skcannon.nn.networks import ARCHITECTURES, SpectrumCNN, SpectrumMLP

__all__ = ["ARCHITECTURES", "NN_FORMAT_VERSION", "LoadedNN", "SeededNet", "SpectraToChannels",
           "SpectrumCNN", "SpectrumMLP", "default_device", "fit_nn", "loss_history",
           "make_nn_regressor", "save_nn"]
