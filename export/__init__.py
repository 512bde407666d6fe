"""Export: trained Keras models → verified TFLite/ONNX bundles the device can run.

One exporter per file format behind :class:`~fmnist_edge.export.base.Exporter`
(:mod:`.tflite`, :mod:`.onnx`); :mod:`.calibration` picks the training images that set the
int8 ranges, :mod:`.verify` runs every artifact through the device code path and compares it
with Keras, and :mod:`.bundle` writes it all atomically with its manifest.
"""
