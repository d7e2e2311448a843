"""U-Net+ (Long 2020 Fig. 5a): U-Net with a densely connected encoder.

Blocks are named as in Fig. 5a. At level n (1..N, 2^(n-1) B filters) and column j, the
concatenation X_{n,j} = [C_{n,j-1}, D_{n-1,j}] of the connected blocks feeds both a
convolutional block C_{n,j} and a stride-2 down-sampling block D_{n,j} (into level n+1), for
n + j <= N; level 1 starts with C_{1,0} on the image. The up-sampling block U_n takes
[U_{n+1}, X_{n+1,N-n}] (e.g. U2 <- [U3, C32, D23]), doubles the resolution by a 3x3 transposed
conv ("T.C.") or by repeating rows and columns ("U.S."), and applies two conv blocks.
C_{1,N} (``logits``) is the 1x1 conv on [U1, C_{1,N-1}]. Every conv is conv-BN-ReLU.

Where the text is silent the weight counts decided: convs keep their bias before BatchNorm
(Keras 2.2.4's default) and the transposed conv is followed by ReLU without BatchNorm. The paper
gives the transposed conv stride (1, 1); it has to be 2 to up-sample, which leaves the weights
unchanged. With grey-scale inputs (N = 5) T.C. / U.S. have 1,926,065 / 1,729,985 weights at
B = 16 and 483,801 / 434,721 at B = 8; Tables 1-2 print 1.926M / 1.730M and 0.484M / 0.435M.
"""
import keras
from keras import layers

from nuclei_tf.models.blocks import check_upsampling, conv_unit, decoder_block
from nuclei_tf.models.heads import segmentation_head
from nuclei_tf.models.inputs import image_input
from nuclei_tf.models.registry import register
from nuclei_tf.models.unet import level_filters


def _join(tensors, name):
    return tensors[0] if len(tensors) == 1 else layers.Concatenate(name=name)(tensors)


def dense_encoder(x, filters):
    """The blocks ``{("C"|"D", n, j): tensor}`` of the U-Net+ encoder (``filters[n-1]`` at level n)."""
    depth = len(filters)
    blocks = {("C", 1, 0): conv_unit(x, filters[0], "C10", batch_norm=True, use_bias=True)}
    for n in range(1, depth):
        for j in range(1, depth - n + 1):
            joined = _join(encoder_inputs(blocks, n, j), f"X{n}{j}_concat")
            blocks[("D", n, j)] = conv_unit(joined, filters[n], f"D{n}{j}", strides=2, batch_norm=True, use_bias=True)
            blocks[("C", n, j)] = conv_unit(joined, filters[n - 1], f"C{n}{j}", batch_norm=True, use_bias=True)
    return blocks


def encoder_inputs(blocks, n, j):
    """X_{n,j}: the outputs of C_{n,j-1} and D_{n-1,j} that exist."""
    keys = [("C", n, j - 1), ("D", n - 1, j)]
    return [blocks[key] for key in keys if key in blocks]


@register("unet_plus")
def unet_plus(
    base_filters=16,
    depth=5,
    upsampling="transpose",
    classes=1,
    activation=None,
    head="foreground",
    input_shape=(None, None, 3),
    name="unet_plus",
):
    """U-Net+ (Long 2020 Fig. 5a): densely connected encoder with stride-2 conv down-sampling.

    ``upsampling="transpose"`` is the "T.C." variant, ``"upsample"`` the "U.S." one.
    ``head``: ``foreground``, ``three_class`` or ``hv`` (:mod:`~nuclei_tf.models.heads`).
    Height and width must be multiples of 2^(N-1).
    """
    check_upsampling(upsampling)
    filters = level_filters(base_filters, depth)
    inputs, x = image_input(input_shape, 2 ** (depth - 1))
    blocks = dense_encoder(x, filters)
    up = {"mode": upsampling, "kernel_size": 3 if upsampling == "transpose" else 0, "relu": True}
    decoded = []
    for n in range(depth - 1, 0, -1):
        joined = _join(decoded + encoder_inputs(blocks, n + 1, depth - n), f"U{n}_concat")
        decoded = [decoder_block(joined, [], filters[n - 1], f"U{n}", up=up, batch_norm=True, use_bias=True)]
    x = layers.Concatenate(name=f"C1{depth}_concat")(decoded + encoder_inputs(blocks, 1, depth))
    outputs = segmentation_head(x, classes, activation, head=head)
    return keras.Model(inputs, outputs, name=name)
