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
    """An RGB image in memory; tiles beyond its edges come from its reflection (``pad_to``):
    up to ``tile`` px, and up to a multiple of ``multiple`` px (the margin scheme)."""

    def __init__(self, image, tile, multiple=1):
        height, width = image.shape[:2]
        self.image = image
        self.padded = pad_to(image, max(tile, -(-height // multiple) * multiple), max(tile, -(-width // multiple) * multiple))
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


def tile_rows(source, rows, normalise=lambda t: t, prefetch=True):
    """Yield ``(key, [((x, y, w, h), tile), ...])`` for each ``(key, boxes)`` of ``rows``: the
    normalised pixels of the boxes with tissue, read one row ahead in a background thread
    (``prefetch``)."""

    def read_row(boxes):
        return [(box, normalise(source.read(*box))) for box in boxes if source.has_tissue(*box)]

    rows = list(rows)
    if not prefetch:
        for key, boxes in rows:
            yield key, read_row(boxes)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tile-reader") as pool:
        pending = pool.submit(read_row, rows[0][1]) if rows else None
        for index, (key, _) in enumerate(rows):
            tiles = [pending.result()]  # held in a list that the yield empties: while suspended here,
            pending = pool.submit(read_row, rows[index + 1][1]) if index + 1 < len(rows) else None
            yield key, tiles.pop()  # this generator keeps no reference to the row the consumer has


def read_ahead(items, read):
    """Yield ``(item, read(item))`` in order, the next item read in a background thread while the
    caller works on this one (a folder of images decodes while the model runs); an error of
    ``read`` surfaces at its item."""
    items = list(items)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="image-reader") as pool:
        pending = pool.submit(read, items[0]) if items else None
        for index, item in enumerate(items):
            current = pending
            pending = pool.submit(read, items[index + 1]) if index + 1 < len(items) else None
            try:
                yield item, current.result()
            except BaseException:
                if pending is not None:
                    pending.cancel()
                raise
