"""The compiled ray march of :func:`~nuclei_tf.data.star_targets.star_distances` (numba, cached on
disk: a few ms per 256 px tile, against seconds in numpy)."""
import math

import numba


@numba.njit(cache=True, nogil=True)
def march(instances, directions, out):
    """``out[row, col, k]``: ``t - 0.5`` for the first whole step ``t`` along ray ``k`` (``directions[k]``
    = dy, dx) from a nucleus pixel that lands on another label or outside the image."""
    height, width = instances.shape
    for row in range(height):
        for col in range(width):
            label = instances[row, col]
            if label == 0:
                continue
            for k in range(directions.shape[0]):
                dy, dx = directions[k, 0], directions[k, 1]
                step = 0
                while True:
                    step += 1
                    y = int(math.floor(row + step * dy + 0.5))
                    x = int(math.floor(col + step * dx + 0.5))
                    if y < 0 or y >= height or x < 0 or x >= width or instances[y, x] != label:
                        out[row, col, k] = step - 0.5
                        break
