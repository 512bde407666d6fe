"""Benchmarks: how fast and how accurate the edge runner is.

``device`` + ``bench_cli`` (``edge-bench``) measure bundles on the device itself: TensorFlow-
free, installed on the Pi with the runner (``tests/test_edge_is_light.py`` checks it).
``compare`` + ``cli`` (``fmnist-compare``) race the edge runner against Keras and the numpy
forward pass of ``numpy_mlp`` on a training machine.
"""
