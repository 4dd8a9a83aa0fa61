"""The one place TensorFlow is imported.

tensorflow-model-optimization needs Keras 2, so every model in this project is a ``tf_keras``
model and ``TF_USE_LEGACY_KERAS=1`` must be set before TensorFlow is first imported. Import
``tf`` and ``keras`` from here (lazily, inside functions, in modules that must stay TF-free)::

    from unas.tfenv import tf, keras
    model = keras.Sequential([keras.layers.Dense(10)])
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TF's INFO/WARNING start-up chatter

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

tf.get_logger().setLevel("ERROR")

__all__ = ["tf", "keras"]
