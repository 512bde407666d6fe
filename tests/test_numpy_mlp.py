"""The numpy forward pass fmnist-compare races the edge runner against: it must compute
exactly what the Keras model computes, or the "within 2x of numpy" ratio means nothing."""

from __future__ import annotations

import numpy as np
import pytest

from fmnist_edge.benchmarks.numpy_mlp import NumpyMLP, softmax
from fmnist_edge.edge import dataset
from fmnist_edge.train import models


@pytest.mark.parametrize("name", list(models.ARCHITECTURES))
def test_numpy_forward_pass_equals_keras(name: str) -> None:
    import keras

    keras.utils.set_random_seed(dataset.SEED)
    model = models.build(name)  # untrained: random weights exercise every layer just as well
    x = np.random.default_rng(0).random((32, *dataset.IMAGE_SHAPE), dtype=np.float32)
    mlp = NumpyMLP.from_keras(model)
    assert len(mlp.layers) == len(models.ARCHITECTURES[name]) + 1
    np.testing.assert_allclose(mlp(x), np.asarray(model(x, training=False)), atol=1e-6)
    assert (mlp(x).argmax(axis=1) == np.asarray(model(x)).argmax(axis=1)).all()


def test_refuses_what_the_npz_exporter_refuses() -> None:
    """One reader of Keras weights: a layer the floor cannot compute is an error, not skipped."""
    import keras

    from fmnist_edge.export.base import ExportError

    model = keras.Sequential([keras.Input(shape=dataset.IMAGE_SHAPE),
                              keras.layers.Reshape((28, 28, 1)),
                              keras.layers.Conv2D(2, 3), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    with pytest.raises(ExportError, match="Flatten/Dense MLPs only, not Reshape"):
        NumpyMLP.from_keras(model)


def test_softmax_is_stable_for_huge_logits() -> None:
    z = np.array([[1000.0, 999.0, -1000.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    p = softmax(z)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(p[1], 1 / 3, rtol=1e-6)
    assert p[0, 0] > p[0, 1] > p[0, 2]
