"""The device side: everything that runs on a Raspberry Pi.

Only numpy, pillow, click and a TFLite/ONNX runtime are allowed here.  Nothing in this
package imports TensorFlow, Keras or tf2onnx, ever: ``tests/test_edge_is_light.py`` checks
``sys.modules`` after a real classification.
"""
