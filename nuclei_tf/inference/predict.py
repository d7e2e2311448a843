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

from nuclei_tf.postprocess.strips import instance_strips, strip_rows_for
from nuclei_tf.preprocess.tiling import blend_window, pad_to, tile_starts

#: images with more pixels than this get their stain statistics from a strided sub-sample.
SUBSAMPLE_ABOVE = 2048 * 2048


def stain_function(bundle, image):
    """Per-tile stain normalisation for ``image`` (identity when the model uses none)."""
    if bundle.stain == "none":
        return lambda tile: tile
    from nuclei_tf.preprocess.macenko import BackgroundError, MacenkoNormalizer

    normaliser = MacenkoNormalizer(convention=bundle.stain.split(":", 1)[1] if ":" in bundle.stain else "classic")
    step = int(np.ceil(np.sqrt(image.shape[0] * image.shape[1] / SUBSAMPLE_ABOVE)))
    try:
        statistics = normaliser.source_statistics(image[::step, ::step])
    except BackgroundError:
        return lambda tile: tile  # a background-only image is left as it is
    return lambda tile: normaliser.apply(tile, statistics)


def probability_rows(bundle, image, batch_size=8, progress=False):
    """Yield ``(top, rows)``: the float16 nucleus probability of an RGB uint8 image of any
    size, in consecutive blocks of finished rows (each at most one tile high)."""
    height, width = image.shape[:2]
    tile = bundle.tile
    if bundle.clahe_tv:
        from nuclei_tf.preprocess.clahe_tv import clahe_tv

        image = clahe_tv(image)
    padded = pad_to(image, tile, tile)
    rows = tile_starts(padded.shape[0], tile, bundle.overlap) + [padded.shape[0]]
    cols = tile_starts(padded.shape[1], tile, bundle.overlap)
    normalise = stain_function(bundle, image)
    maximum = bundle.blend == "max"  # Long 2020: "the maximum value of all predictions ... at one pixel"
    window = None if maximum else blend_window(tile, bundle.blend)
    empty = -np.inf if maximum else 0.0
    total = np.full((tile, padded.shape[1]), empty)
    weight = None if maximum else np.zeros((tile, padded.shape[1]))
    with tqdm(total=(len(rows) - 1) * len(cols), desc="tiles", disable=not progress, leave=False) as bar:
        for r, following in zip(rows[:-1], rows[1:]):
            for start in range(0, len(cols), batch_size):
                chunk = cols[start : start + batch_size]
                tiles = np.stack([normalise(padded[r : r + tile, c : c + tile]) for c in chunk])
                for c, probability in zip(chunk, bundle.probabilities(tiles)):
                    if maximum:
                        np.maximum(total[:, c : c + tile], probability, out=total[:, c : c + tile])
                    else:
                        total[:, c : c + tile] += probability * window
                        weight[:, c : c + tile] += window
                bar.update(len(chunk))
            finished = min(following, height) - r  # rows above the next tile row are finished
            if finished > 0:
                block = total[:finished, :width] if maximum else total[:finished, :width] / weight[:finished, :width]
                yield r, block.astype(np.float16)
            step = following - r
            for band, fill in ((total, empty), (weight, 0.0)):  # slide the band down to the next tile row, in place
                if band is not None:
                    band[: tile - step] = band[step:]
                    band[tile - step :] = fill


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
