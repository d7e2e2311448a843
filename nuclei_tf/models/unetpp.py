"""UNet++ (Zhou 2018 Fig. 1): nested dense skip pathways, deep supervision and pruning."""
import functools

import keras

from nuclei_tf.models.blocks import check_upsampling, decoder_block
from nuclei_tf.models.heads import segmentation_head
from nuclei_tf.models.inputs import image_input
from nuclei_tf.models.paths import contracting_path, nested_skip_pathways
from nuclei_tf.models.registry import register
from nuclei_tf.models.unet import level_filters


@register("unetpp")
def unetpp(
    base_filters=32,
    depth=5,
    upsampling="transpose",
    l2=1e-4,
    dropout=0.0,
    deep_supervision=False,
    prune=None,
    classes=1,
    activation=None,
    head="foreground",
    input_shape=(None, None, 3),
    name="unetpp",
):
    """UNet++ (Zhou 2018 Fig. 1): nested dense skip pathways, deep supervision, pruning L1..L(N-1).

    Nodes X^{i,j} (Eq. 1) are two 3x3 conv-ReLU units (``dropout`` after each) with L2 penalty
    ``l2`` (lambda); up-sampling is a 2x2 transposed conv (or up-sampling + 2x2 conv).
    ``deep_supervision`` adds a 1x1 head on every X^{0,j} (outputs ``probabilities_l{j}``, the last
    one ``probabilities``); ``prune=L`` builds only the sub-network of X^{0,L} (Zhou's L_L), whose
    layer names match the full model's. ``head``: ``foreground``, ``three_class`` or ``hv`` (every head;
    :mod:`~nuclei_tf.models.heads`). Height and width must be multiples of 2^(levels).
    """
    check_upsampling(upsampling)
    levels = depth - 1 if prune is None else prune
    if not 1 <= levels <= depth - 1:
        raise ValueError(f"prune must be in 1..{depth - 1} for depth {depth}; got {prune}")
    filters = level_filters(base_filters, depth)[: levels + 1]
    inputs, x = image_input(input_shape, 2**levels)
    unit = {"l2": l2, "dropout": dropout}
    features = contracting_path(x, filters, "X_{}_0", **unit)
    block = functools.partial(decoder_block, up={"mode": upsampling}, **unit)
    nodes = nested_skip_pathways(features, filters, block)
    outputs = [segmentation_head(nodes[(0, levels)], classes, activation, head=head)]
    if deep_supervision:
        heads = [segmentation_head(nodes[(0, j)], classes, activation, suffix=f"_l{j}", head=head) for j in range(1, levels)]
        outputs = heads + outputs
    return keras.Model(inputs, outputs if len(outputs) > 1 else outputs[0], name=name)
