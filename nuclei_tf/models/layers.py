"""Custom Keras layers of the architectures (all serialisable, no Lambda layers)."""
import keras


def size_error(height, width, multiple):
    """The message for an input whose height or width is not a multiple of ``multiple``."""
    return (
        f"input size {height}x{width} is not divisible by {multiple}: this architecture "
        f"down-samples by {multiple}; pad or crop height and width to multiples of {multiple}"
    )


@keras.saving.register_keras_serializable(package="nuclei_tf")
class InputSizeCheck(keras.layers.Layer):
    """Identity that checks height and width are multiples of ``multiple``.

    Static sizes are checked while tracing (a ``ValueError``); sizes known only at run time
    (TensorFlow graphs with ``None`` dimensions) go through ``tf.debugging.assert_equal`` (an
    ``InvalidArgumentError`` with the same message). JAX and PyTorch always trace with static
    sizes, so this layer needs TensorFlow only for the run-time check.
    """

    def __init__(self, multiple, **kwargs):
        super().__init__(**kwargs)
        self.multiple = int(multiple)

    def call(self, inputs):
        height, width = inputs.shape[1], inputs.shape[2]
        if height is not None and width is not None:
            if height % self.multiple or width % self.multiple:
                raise ValueError(size_error(height, width, self.multiple))
            return inputs
        import tensorflow as tf

        size = tf.shape(inputs)[1:3]
        check = tf.debugging.assert_equal(
            size % self.multiple,
            tf.zeros_like(size),
            message=f"input height and width must be divisible by {self.multiple}",
        )
        with tf.control_dependencies([check]):
            return tf.identity(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple}
