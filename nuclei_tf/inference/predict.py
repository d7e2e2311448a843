"""Tiled prediction on images of any size in bounded memory.

Tiles (``bundle.tile`` px, ``bundle.overlap`` overlap) are predicted row of tiles by row
of tiles through a compiled ``tf.function`` (an eager Keras call keeps every activation of
the batch alive: 2.1 GB for 8 U-Net+ tiles of 256 px against 0.3 GB compiled); their
blended sum lives in a band buffer one tile high, and finished rows leave as float16
blocks (:func:`probability_rows`). :func:`segment_strips` post-processes those blocks strip by
strip, so a whole slide never needs a full-size probability or label map; stain
normalisation statistics of large images come from a sub-sample and are applied per tile.
A model trained on Long 2020's CLAHE + TV images (``bundle.clahe_tv``) gets the whole image
equalised and de-noised first (a float32 copy of the image: these are global operations).
"""
import numpy as np
from tqdm import tqdm

from nuclei_tf.inference.sources import ArraySource, tile_rows
from nuclei_tf.postprocess.strips import instance_strips, strip_rows_for
from nuclei_tf.preprocess.tiling import blend_window, tile_starts

def stain_function(bundle, source):
    """Per-tile stain normalisation for ``source`` (identity when the model uses none)."""
    if bundle.stain == "none":
        return lambda tile: tile
    from nuclei_tf.preprocess.macenko import BackgroundError, MacenkoNormalizer

    normaliser = MacenkoNormalizer(convention=bundle.stain.split(":", 1)[1] if ":" in bundle.stain else "classic")
    try:
        statistics = normaliser.source_statistics(source.statistics_sample())
    except BackgroundError:
        return lambda tile: tile  # a background-only image is left as it is
    return lambda tile: normaliser.apply(tile, statistics)


def as_source(bundle, image):
    """``image`` as a tile source: an RGB array (CLAHE + TV applied first for such models) or a
    source already (:mod:`nuclei_tf.inference.sources`)."""
    if not isinstance(image, np.ndarray):
        if bundle.clahe_tv:
            raise ValueError("a CLAHE + TV model (Long 2020) equalises whole images; it cannot run on a slide")
        return image
    if bundle.clahe_tv:
        from nuclei_tf.preprocess.clahe_tv import clahe_tv

        image = clahe_tv(image)
    return ArraySource(image, bundle.tile)


def probability_rows(bundle, image, batch_size=8, progress=False, start_row=0):
    """Yield ``(top, rows)``: the float16 nucleus probability of an RGB uint8 image of any size
    (or of a tile source such as a slide), in consecutive blocks of finished rows (each at most
    one tile high). Tiles without tissue are not predicted (probability 0 where no tile was).

    ``start_row``: begin with the block holding that row (cut to start there), computing only the
    tile rows it needs; its values equal those of a run from row 0 (a resumed slide).
    """
    source = as_source(bundle, image)
    height, width = source.shape
    tile = bundle.tile
    padded_height, padded_width = max(height, tile), max(width, tile)
    rows = tile_starts(padded_height, tile, bundle.overlap) + [padded_height]
    cols = tile_starts(padded_width, tile, bundle.overlap)
    first = next(i for i, r in enumerate(rows[:-1]) if r + tile > start_row)  # the first tile row touching start_row
    normalise = stain_function(bundle, source)
    maximum = bundle.blend == "max"  # Long 2020: "the maximum value of all predictions ... at one pixel"
    window = None if maximum else blend_window(tile, bundle.blend)
    empty = -np.inf if maximum else 0.0
    total = np.full((tile, padded_width), empty)
    weight = None if maximum else np.zeros((tile, padded_width))
    starts = rows[first:-1]
    kept = sum(source.has_tissue(c, r, tile, tile) for r in starts for c in cols) if progress else 0
    following_of = dict(zip(rows[:-1], rows[1:]))
    with tqdm(total=kept, desc="tiles with tissue", unit="tile", disable=not progress, leave=False) as bar:
        for r, tiles in tile_rows(source, starts, cols, tile, normalise):
            for begin in range(0, len(tiles), batch_size):
                chunk = tiles[begin : begin + batch_size]
                probabilities = bundle.probabilities(np.stack([t for _, t in chunk]))
                for (c, _), probability in zip(chunk, probabilities):
                    if maximum:
                        np.maximum(total[:, c : c + tile], probability, out=total[:, c : c + tile])
                    else:
                        total[:, c : c + tile] += probability * window
                        weight[:, c : c + tile] += window
                bar.update(len(chunk))
            following = following_of[r]
            finished = min(following, height) - r  # rows above the next tile row are finished
            skip = max(start_row - r, 0)
            if finished > skip:
                block = _finished_rows(total, weight, finished, width)
                yield r + skip, block[skip:]
            step = following - r
            for band, fill in ((total, empty), (weight, 0.0)):  # slide the band down to the next tile row, in place
                if band is not None:
                    band[: tile - step] = band[step:]
                    band[tile - step :] = fill


def _finished_rows(total, weight, rows, width):
    """The float16 probability of the first ``rows`` rows of the band (0 where no tile was predicted)."""
    if weight is None:
        return np.maximum(total[:rows, :width], 0.0).astype(np.float16)  # -inf where no tile: 0
    covered = weight[:rows, :width]
    return np.divide(total[:rows, :width], covered, out=np.zeros_like(covered), where=covered > 0).astype(np.float16)


def predict_probability(bundle, image, batch_size=8, progress=False):
    """The H x W float16 nucleus probability of an RGB uint8 image of any size."""
    out = np.empty(image.shape[:2], dtype=np.float16)
    for top, block in probability_rows(bundle, image, batch_size, progress):
        out[top : top + len(block)] = block
    return out


def segment_strips(bundle, image, batch_size=8, progress=False, strip_rows=None, blocks=None):
    """Yield the :class:`~nuclei_tf.postprocess.strips.InstanceStrip` s of an RGB uint8 image
    (the bundle's post-processing, strip by strip; ``strip_rows`` defaults to
    :func:`~nuclei_tf.postprocess.strips.strip_rows_for` its width). ``blocks``: the image's
    probability row blocks when the caller already has them (default: :func:`probability_rows`)."""
    if blocks is None:
        blocks = probability_rows(bundle, image, batch_size, progress)
    return instance_strips(blocks, image.shape[0], bundle.postprocess, strip_rows or strip_rows_for(image.shape[1]))


def segment(bundle, image, batch_size=8, progress=False):
    """``(probability, instances)`` of an RGB uint8 image with the bundle's post-processing."""
    probability = np.empty(image.shape[:2], dtype=np.float16)
    instances = np.zeros(image.shape[:2], dtype=np.int32)

    def kept_rows():
        for top, rows in probability_rows(bundle, image, batch_size, progress):
            probability[top : top + len(rows)] = rows
            yield top, rows

    for strip in segment_strips(bundle, image, blocks=kept_rows()):
        strip.paste(instances)
    return probability, instances
