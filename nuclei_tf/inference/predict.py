"""Tiled prediction on images of any size in bounded memory.

Tiles (``bundle.tile`` px, ``bundle.overlap`` overlap) are predicted row of tiles by row
of tiles; their blended sum lives in a band buffer one tile high, and finished rows are
flushed to a float16 probability map. Memory therefore grows with the image (uint8 RGB +
float16 probability + int32 labels, ~9 bytes/pixel) and not with the tiles. Stain
normalisation statistics of large images come from a sub-sample and are applied per tile.
"""
import numpy as np
from tqdm import tqdm

from nuclei_tf.postprocess import probability_to_instances
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


def _probabilities(model, tiles):
    """Nucleus probability (N, t, t) for a batch of uint8 tiles."""
    out = np.asarray(model(tiles.astype(np.float32) / 255.0, training=False), dtype=np.float32)
    return out[..., -1]


def predict_probability(bundle, image, batch_size=8, progress=False):
    """The H x W float16 nucleus probability of an RGB uint8 image of any size."""
    height, width = image.shape[:2]
    tile = bundle.tile
    padded = pad_to(image, tile, tile)
    rows = tile_starts(padded.shape[0], tile, bundle.overlap)
    cols = tile_starts(padded.shape[1], tile, bundle.overlap)
    normalise = stain_function(bundle, image)
    window = blend_window(tile, bundle.blend)
    out = np.empty(padded.shape[:2], dtype=np.float16)
    total = np.zeros((tile, padded.shape[1]))
    weight = np.zeros((tile, padded.shape[1]))
    origin = 0
    bar = tqdm(total=len(rows) * len(cols), desc="tiles", disable=not progress, leave=False)
    for r in rows:
        shift = r - origin  # rows above r are complete: flush them, slide the band down
        out[origin:r] = total[:shift] / weight[:shift]
        total = np.roll(total, -shift, axis=0)
        weight = np.roll(weight, -shift, axis=0)
        total[tile - shift:] = 0.0
        weight[tile - shift:] = 0.0
        origin = r
        for start in range(0, len(cols), batch_size):
            chunk = cols[start : start + batch_size]
            tiles = np.stack([normalise(padded[r : r + tile, c : c + tile]) for c in chunk])
            for c, probability in zip(chunk, _probabilities(bundle.model, tiles)):
                total[:, c : c + tile] += probability * window
                weight[:, c : c + tile] += window
            bar.update(len(chunk))
    out[origin:] = total[: padded.shape[0] - origin] / weight[: padded.shape[0] - origin]
    bar.close()
    return out[:height, :width]


def segment(bundle, image, batch_size=8, progress=False):
    """``(probability, instances)`` of an RGB uint8 image with the bundle's post-processing."""
    probability = predict_probability(bundle, image, batch_size, progress)
    return probability, probability_to_instances(probability, bundle.postprocess)
