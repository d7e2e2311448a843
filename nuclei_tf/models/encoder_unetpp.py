"""UNet++ on a pretrainable encoder (Le Dinh 2021 Fig. 3: EfficientNet B0-B5 with a UNet++ decoder)."""
from nuclei_tf.models.encoder_unet import encoder_model
from nuclei_tf.models.paths import nested_skip_pathways
from nuclei_tf.models.registry import register


def unetpp_decoder(bottom, skips, filters, block):
    """Zhou 2018's nested skip pathways on the encoder's feature maps (the X^{i,0}); every node
    X^{i,j} is a segmentation_models decoder block with ``filters`` (deepest first)."""
    shallow_to_deep = [None] * (len(filters) - len(skips)) + skips[::-1] + [bottom]
    return nested_skip_pathways(shallow_to_deep, filters[::-1], block)[(0, len(filters))]


register(
    "unetpp_encoder",
    description="UNet++ on a keras.applications/ResNeXt encoder (Le Dinh 2021: EfficientNet B0-B5).",
    defaults={"encoder": "efficientnetb0"},
    decoder=unetpp_decoder,
)(encoder_model)
