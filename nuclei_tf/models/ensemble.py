"""U-Net ensemble (Lagree 2021, "Ensemble networks"): pixel-wise mean of member probability maps."""
import keras
from keras import layers

from nuclei_tf.models.inputs import image_input
from nuclei_tf.models.members import LAGREE_MEMBERS, frozen_member, input_multiple, load_members
from nuclei_tf.models.registry import register


@register("ensemble")
def ensemble(members=LAGREE_MEMBERS, input_shape=(None, None, 3), name="ensemble"):
    """U-Net ensemble (Lagree 2021): pixel-wise mean of the members' probability maps.

    ``members`` as for ``gbunet`` (default: Lagree's VGG-19, ResNet-101 and DenseNet-121 U-Nets);
    each is frozen. The output ``probabilities`` is float32; there is no ``logits`` layer.
    """
    models = load_members(members)
    if len(models) < 2:
        raise ValueError(f"an ensemble needs at least two members; got {len(models)}")
    inputs, x = image_input(input_shape, input_multiple(models))
    maps = [frozen_member(model, index, "probabilities")(x) for index, model in enumerate(models)]
    outputs = layers.Average(dtype="float32", name="probabilities")(maps)
    return keras.Model(inputs, outputs, name=name)
