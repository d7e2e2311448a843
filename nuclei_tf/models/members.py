"""Member models of the GB U-Net and the U-Net ensemble (Lagree 2021)."""
import math
import os

import keras

from nuclei_tf.models.heads import model_head
from nuclei_tf.models.registry import build_model
from nuclei_tf.models.saving import load_model

#: Lagree 2021's members: U-Nets with VGG-19, ResNet-101 and DenseNet-121 encoders, 2-class softmax
LAGREE_MEMBERS = tuple(
    {"arch": "unet_encoder", "encoder": encoder, "classes": 2} for encoder in ("vgg19", "resnet101", "densenet121")
)

#: the same members with ImageNet-pretrained encoders, as Lagree trained them (``nuclei-tf fit
#: --arch gbunet`` without a config)
LAGREE_PRETRAINED_MEMBERS = tuple(dict(member, encoder_weights="imagenet") for member in LAGREE_MEMBERS)


def load_member(member):
    """A member as a ``keras.Model``: given as one, as the path of a saved ``.keras`` model, or as
    ``build_model`` options (a dict with ``"arch"``)."""
    if isinstance(member, keras.Model):
        return member
    if isinstance(member, dict):
        options = dict(member)
        return build_model(options.pop("arch"), **options)
    if isinstance(member, (str, os.PathLike)):
        return load_model(member)
    raise TypeError(f"a member must be a keras.Model, a .keras path or a dict of build_model options; got {member!r}")


def load_members(members):
    """Every member as a ``keras.Model`` (:func:`load_member`); stacked models combine foreground
    maps, so a member with the three_class or hv head is refused."""
    models = [load_member(member) for member in members]
    other = [f"{index} ({model.name}: {model_head(model)})" for index, model in enumerate(models)
             if model_head(model) != "foreground"]
    if other:
        raise ValueError(f"gbunet and ensemble members must have the foreground head; member {', '.join(other)} "
                         "has another head")
    return models


def input_multiple(models):
    """The least common multiple of the models' input-size requirements (``input_size_check``)."""
    multiples = [1]
    for model in models:
        try:
            multiples.append(model.get_layer("input_size_check").multiple)
        except ValueError:
            continue
    return math.lcm(*multiples)


def frozen_member(model, index, layer_name):
    """The sub-model of ``model`` up to layer ``layer_name``, untrainable and named
    ``member_{index}_{model.name}`` so that members' layer names never collide."""
    member = keras.Model(model.input, model.get_layer(layer_name).output, name=f"member_{index}_{model.name}")
    member.trainable = False
    return member
