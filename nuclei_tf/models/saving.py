"""Loading ``.keras`` files written by nuclei-tf.

Importing ``nuclei_tf.models`` registers the package's custom layers with Keras, which
``keras.saving.load_model`` needs; this function guarantees that import has happened.
"""
import keras


def load_model(path, compile=False):
    """Load a nuclei-tf ``.keras`` model safely (no Lambda layers, no arbitrary code)."""
    import nuclei_tf.models  # noqa: F401  (registers the custom layers)

    return keras.saving.load_model(path, compile=compile, safe_mode=True)
