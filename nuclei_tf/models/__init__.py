"""Segmentation architectures of the four papers, built natively in Keras 3.

``build_model(arch, **options)`` builds one; ``list_models()`` lists them (see ``registry``).
"""
# importing the builders registers their archs, listed in this order
from nuclei_tf.models import unet, unet_plus, unetpp, encoder_unet, encoder_unetpp, gbunet, ensemble  # noqa: F401, I001
from nuclei_tf.models.encoders import ENCODERS, build_encoder
from nuclei_tf.models.pretrained import EncoderWeightsError
from nuclei_tf.models.registry import build_model, get_spec, list_models, register
from nuclei_tf.models.saving import load_model

__all__ = ["ENCODERS", "EncoderWeightsError", "build_encoder", "build_model", "get_spec", "list_models", "load_model", "register"]
