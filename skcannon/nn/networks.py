"""The network architectures (PyTorch modules) of the label regressor.

* ``mlp``: flatten -> Linear(2 n_pixels, 256) -> GELU -> Dropout -> Linear(256, 128) -> GELU ->
  Linear(128, n_labels);
* ``cnn``: Conv1d(2, 8, 9) -> GELU -> MaxPool(4) -> Conv1d(8, 16, 9) -> GELU -> MaxPool(4) ->
  flatten -> Linear(., 128) -> GELU -> Dropout -> Linear(128, n_labels).

Both take the two-channel input of :class:`skcannon.nn.estimator.SpectraToChannels`,
shape (n_stars, 2, n_pixels).
"""

from __future__ import annotations

from torch import nn


class SpectrumMLP(nn.Module):
    """Multi-layer perceptron on the flattened two-channel spectrum.

    Parameters
    ----------
    n_pixels : int
        Pixels per spectrum.
    n_labels : int
        Outputs.
    hidden : int, default=256
        Units of the first hidden layer (the second has half as many).
    dropout : float, default=0.1
        Dropout after the first hidden layer.
    """

    def __init__(self, n_pixels: int, n_labels: int, hidden: int = 256, dropout: float = 0.1):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * n_pixels, hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden // 2), nn.GELU(), nn.Linear(hidden // 2, n_labels))

    def forward(self, X):
        """Labels (standardized) from the input channels.

        Parameters
        ----------
        X : Tensor of shape (n_stars, 2, n_pixels)

        Returns
        -------
        Tensor of shape (n_stars, n_labels)
        """
        return self.layers(X)


class SpectrumCNN(nn.Module):
    """A small 1-D convolutional network on the two-channel spectrum.

    Parameters
    ----------
    n_pixels : int
        Pixels per spectrum.
    n_labels : int
        Outputs.
    channels : int, default=8
        Filters of the first convolution (the second has twice as many).
    kernel : int, default=9
        Convolution kernel width, in pixels.
    hidden : int, default=128
        Units of the hidden dense layer.
    dropout : float, default=0.1
        Dropout before the output layer.
    """

    def __init__(self, n_pixels: int, n_labels: int, channels: int = 8, kernel: int = 9,
                 hidden: int = 128, dropout: float = 0.1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(2, channels, kernel, padding=kernel // 2), nn.GELU(), nn.MaxPool1d(4),
            nn.Conv1d(channels, 2 * channels, kernel, padding=kernel // 2), nn.GELU(),
            nn.MaxPool1d(4), nn.Flatten())
        size = 2 * channels * ((n_pixels // 4) // 4)
        self.head = nn.Sequential(nn.Linear(size, hidden), nn.GELU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, n_labels))

    def forward(self, X):
        """Labels (standardized) from the input channels.

        Parameters
        ----------
        X : Tensor of shape (n_stars, 2, n_pixels)

        Returns
        -------
        Tensor of shape (n_stars, n_labels)
        """
        return self.head(self.features(X))


ARCHITECTURES = {"mlp": SpectrumMLP, "cnn": SpectrumCNN}
