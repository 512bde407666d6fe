"""TensorFlow's own TFLite interpreter, offered to the device runner as a plug-in.

``edge-classify --backend tensorflow`` asks for it by name (to compare against LiteRT on a
laptop).  It lives here, registered through the ``fmnist_edge.tflite_interpreters`` entry
point, because nothing in ``edge`` may import TensorFlow.  ``tf.lite.Interpreter`` is
deprecated in favour of LiteRT, which is why it is never chosen automatically.
"""

from __future__ import annotations

from typing import Any


def interpreter_class() -> Any:
    """``tf.lite.Interpreter`` (imports TensorFlow: seconds, hundreds of MB)."""
    import tensorflow as tf

    return tf.lite.Interpreter
