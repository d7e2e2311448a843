"""Where the tiles of a prediction come from.

* :class:`ArraySource`: an image in memory, padded once to a tile (as plain images always were);
* :class:`SlideSource`: a whole slide at the model's resolution
  (:class:`~nuclei_tf.data.slide.ResampledView`), read tile by tile from the best pyramid level,
  with tiles that hold no tissue (:class:`~nuclei_tf.preprocess.tissue.TissueMap`) skipped.

:func:`tile_rows` reads the next row of tiles in a background thread while the model predicts
the current one, so region reading and JPEG / JPEG-2000 decoding overlap the model.
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from nuclei_tf.preprocess.tiling import pad_to

#: images with more pixels than this get their stain statistics from a strided sub-sample.
SUBSAMPLE_ABOVE = 2048 * 2048


class ArraySource:
    """An RGB image in memory; tiles beyond its edges come from its reflection (``pad_to``)."""

    def __init__(self, image, tile):
        self.image, self.padded = image, pad_to(image, tile, tile)
        self.shape = image.shape[:2]

    def read(self, x, y, width, height):
        return self.padded[y : y + height, x : x + width]

    def has_tissue(self, x, y, width, height):
        return True

    def statistics_sample(self):
        """Pixels for the stain statistics: the image, strided down to about SUBSAMPLE_ABOVE pixels."""
        step = int(np.ceil(np.sqrt(self.shape[0] * self.shape[1] / SUBSAMPLE_ABOVE)))
        return self.image[::step, ::step]


class SlideSource:
    """A slide (or its region of interest) at the model's resolution; ``tissue`` (a TissueMap in
    level-0 pixels, or None for every tile) decides which tiles are predicted."""

    def __init__(self, view, tissue=None, thumbnail=None):
        self.view, self.tissue, self.thumbnail = view, tissue, thumbnail
        self.shape = view.shape

    def read(self, x, y, width, height):
        return self.view.read(x, y, width, height)

    def level0_box(self, x, y, width, height):
        """The level-0 box ``(x, y, w, h)`` under a model-space box."""
        x0, y0 = self.view.to_level0(x, y)
        return x0, y0, width * self.view.downsample, height * self.view.downsample

    def has_tissue(self, x, y, width, height):
        return self.tissue is None or self.tissue.fraction(*self.level0_box(x, y, width, height)) > 0

    def statistics_sample(self):
        """Pixels for the stain statistics: the slide's thumbnail (tissue pixels are what count)."""
        return self.thumbnail if self.thumbnail is not None else self.view.read(0, 0, *self.shape[::-1])


def tile_rows(source, rows, cols, tile, normalise=lambda t: t, prefetch=True):
    """Yield ``(r, [(c, tile), ...])`` for each tile-row start in ``rows``: the normalised tiles with
    tissue, read one row ahead in a background thread (``prefetch``)."""

    def read_row(r):
        return [(c, normalise(source.read(c, r, tile, tile))) for c in cols if source.has_tissue(c, r, tile, tile)]

    if not prefetch:
        for r in rows:
            yield r, read_row(r)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tile-reader") as pool:
        pending = pool.submit(read_row, rows[0]) if rows else None
        for index, r in enumerate(rows):
            tiles = pending.result()
            pending = pool.submit(read_row, rows[index + 1]) if index + 1 < len(rows) else None
            yield r, tiles
