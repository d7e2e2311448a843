"""Topologies shared by the from-scratch and encoder models.

- ``contracting_path``: Ronneberger 2015 Fig. 1, left half (two 3x3 conv units, 2x2 max pooling).
- ``expanding_path``: Ronneberger 2015 Fig. 1, right half (up-sample, concatenate the skip, convs).
- ``nested_skip_pathways``: Zhou 2018 Eq. 1, the UNet++ nodes X^{i,j}.

A ``block(x, skips, filters, name)`` (see ``blocks.decoder_block``) makes each decoder node.
"""
from keras import layers

from nuclei_tf.models.blocks import conv_unit


def contracting_path(x, filters, name, **unit):
    """Feature maps ``[X^{0,0}, ..., X^{L,0}]``, one per entry of ``filters`` (shallow to deep).

    Level ``i`` is max-pooled (i > 0) then convolved by two conv units named
    ``name.format(i)`` + ``_a`` / ``_b`` (``unit``: keyword arguments of ``conv_unit``).
    """
    features = []
    for level, level_filters in enumerate(filters):
        prefix = name.format(level)
        if level:
            x = layers.MaxPooling2D(2, name=f"{prefix}_pool")(x)
        x = conv_unit(x, level_filters, f"{prefix}_a", **unit)
        x = conv_unit(x, level_filters, f"{prefix}_b", **unit)
        features.append(x)
    return features


def expanding_path(bottom, skips, filters, block):
    """U-Net decoder from ``bottom``: one ``block`` per entry of ``skips`` (deepest first).

    A skip may be ``None`` (the encoder has no feature map at that resolution): the block then
    only up-samples and convolves. Blocks are named ``decoder_stage{k}`` as in segmentation_models.
    """
    x = bottom
    for stage, (skip, stage_filters) in enumerate(zip(skips, filters)):
        x = block(x, [] if skip is None else [skip], stage_filters, f"decoder_stage{stage}")
    return x


def nested_skip_pathways(features, filters, block):
    """UNet++ nodes ``{(i, j): X^{i,j}}`` with X^{i,j} = H([X^{i,0}, ..., X^{i,j-1}, U(X^{i+1,j-1})]).

    ``features[i]`` is X^{i,0} (shallow to deep; the last one is the bottom); ``filters[i]`` is the
    width of level ``i``. A level whose X^{i,0} is ``None`` gets only the node on the path to the
    output, X^{i,L-i}. Nodes are named ``X_{i}_{j}``.
    """
    depth = len(features) - 1
    nodes = {(i, 0): feature for i, feature in enumerate(features) if feature is not None}
    for j in range(1, depth + 1):
        for i in range(depth - j + 1):
            if (i, 0) not in nodes and i + j < depth:
                continue
            dense = [nodes[(i, k)] for k in range(j) if (i, k) in nodes]
            nodes[(i, j)] = block(nodes[(i + 1, j - 1)], dense, filters[i], f"X_{i}_{j}")
    return nodes
