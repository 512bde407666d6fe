"""fmnist-edge: Fashion-MNIST MLPs from Keras training to a TensorFlow-free runner on a Pi.

The code lives in the top-level folders ``train/``, ``export/``, ``edge/`` and
``benchmarks/``; packaging maps them to ``fmnist_edge.train`` and friends so nothing is
ever imported as a bare top-level module.  This file holds only the version.
"""

__version__ = "0.1.0"
