"""The image input of every architecture, with its divisibility requirement."""
import keras

from nuclei_tf.models.layers import InputSizeCheck, size_error


def image_input(input_shape, multiple):
    """``(inputs, x)``: a ``keras.Input`` and the same tensor after an ``InputSizeCheck``.

    ``input_shape`` is ``(height, width, channels)``; height and width may be ``None`` (checked
    at call time) and otherwise must be multiples of ``multiple`` (a ``ValueError`` now).
    """
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels); got {input_shape!r}")
    height, width = input_shape[:2]
    if any(size is not None and size % multiple for size in (height, width)):
        raise ValueError(size_error(height, width, multiple))
    inputs = keras.Input(tuple(input_shape), name="image")
    return inputs, InputSizeCheck(multiple, name="input_size_check")(inputs)
