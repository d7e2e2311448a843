"""Tiled prediction on images of any size in bounded memory.

Tiles (``bundle.tile`` px, ``bundle.overlap`` overlap, blended; or, with ``bundle.margin``,
large tiles whose border is discarded: :func:`margin_rows`) are predicted row of tiles by row
of tiles through a compiled ``tf.function`` (an eager Keras call keeps every activation of
the batch alive: 2.1 GB for 8 U-Net+ tiles of 256 px against 0.3 GB compiled); their
blended sum lives in a band buffer one tile high, and finished rows leave as float16
blocks (:func:`probability_rows`). :func:`segment_strips` post-processes those blocks strip by
strip, so a whole slide never needs a full-size probability or label map; stain
normalisation statistics of large images come from a sub-sample and are applied per tile.
A three-class model's blocks carry two channels per pixel, interior and nucleus probability
(:data:`~nuclei_tf.postprocess.markers.REDUCED`; :func:`block_channels`), reduced from its
softmax as each batch of tiles leaves the model; a rays model's carry its 33 outputs, which
:mod:`~nuclei_tf.postprocess.star_polygons` turns into polygons strip by strip. A model trained on Long 2020's CLAHE + TV
images (``bundle.clahe_tv``) gets the whole image equalised and de-noised first (a float32
copy of the image: these are global operations).
"""
import numpy as np
from tqdm import tqdm

from nuclei_tf.inference.sources import ArraySource, tile_rows
from nuclei_tf.data.star_targets import RAY_CHANNELS
from nuclei_tf.models.heads import MARKER_HEADS, model_head
from nuclei_tf.models.receptive_field import input_multiple
from nuclei_tf.postprocess.markers import REDUCED
from nuclei_tf.postprocess.star_polygons import polygon_strips
from nuclei_tf.postprocess.strips import instance_strips, strip_rows_for
from nuclei_tf.preprocess.tiling import blend_window, tile_starts


def stain_normalizer(bundle, capped=True):
    """The Macenko normaliser of a ``bundle`` whose stain is ``macenko[:convention]``, its gains
    capped at ``bundle.stain_max_gain`` unless ``capped`` is False."""
    from nuclei_tf.preprocess.macenko import MacenkoNormalizer

    convention = bundle.stain.split(":", 1)[1] if ":" in bundle.stain else "classic"
    return MacenkoNormalizer(convention=convention, max_gain=bundle.stain_max_gain if capped else None)


def stain_function(bundle, source):
    """Per-tile input normalisation for ``source`` (identity when the model uses none): Macenko's,
    or StarDist's percentiles of the whole source (``percentile``: of the image, or of a slide's
    thumbnail), the same for every tile."""
    if bundle.stain == "none":
        return lambda tile: tile
    if bundle.stain == "percentile":
        from nuclei_tf.preprocess.percentile import PercentileNormalizer

        scaler = PercentileNormalizer()
        intensity = scaler.source_statistics(source.statistics_sample())
        return lambda tile: scaler.apply(tile, intensity)
    from nuclei_tf.preprocess.macenko import BackgroundError

    normaliser = stain_normalizer(bundle)
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
    if bundle.margin:
        return ArraySource(image, 1, input_multiple(bundle.model))
    return ArraySource(image, bundle.tile)


def block_channels(bundle):
    """The trailing shape of ``bundle``'s probability blocks: () for a foreground model, (2,) for
    a three-class or hv one, (33,) for a rays one."""
    head = model_head(bundle.model)
    return (len(REDUCED),) if head in MARKER_HEADS else (RAY_CHANNELS,) if head == "rays" else ()


def probability_rows(bundle, image, batch_size=8, progress=False, start_row=0):
    """Yield ``(top, rows)``: the float16 nucleus probability of an RGB uint8 image of any size
    (or of a tile source such as a slide), in consecutive blocks of finished rows (each at most
    one tile high; rows x width, x 2 for a three-class model: :func:`block_channels`). Tiles
    without tissue are not predicted (probability 0 where no tile was).

    ``start_row``: begin with the block holding that row (cut to start there), computing only the
    tile rows it needs; its values equal those of a run from row 0 (a resumed slide).
    """
    source = as_source(bundle, image)
    if bundle.margin:
        yield from margin_rows(bundle, source, batch_size, progress, start_row)
        return
    height, width = source.shape
    tile = bundle.tile
    padded_width = max(width, tile)
    rows, boxes = blend_boxes(bundle, source.shape, start_row)
    normalise = stain_function(bundle, source)
    maximum = bundle.blend == "max"  # Long 2020: "the maximum value of all predictions ... at one pixel"
    channels = block_channels(bundle)
    ones = (1,) * len(channels)  # the window and weights broadcast over the channels
    window = None if maximum else blend_window(tile, bundle.blend).reshape((tile, tile) + ones)
    empty = -np.inf if maximum else 0.0
    total = np.full((tile, padded_width) + channels, empty)
    weight = None if maximum else np.zeros((tile, padded_width) + ones)
    kept = sum(source.has_tissue(*box) for _, row in boxes for box in row) if progress else 0
    following_of = dict(zip(rows[:-1], rows[1:]))
    with tqdm(total=kept, desc="tiles with tissue", unit="tile", disable=not progress, leave=False) as bar:
        for r, tiles in tile_rows(source, boxes, normalise):
            for begin in range(0, len(tiles), batch_size):
                chunk = tiles[begin : begin + batch_size]
                probabilities = bundle.probabilities(np.stack([t for _, t in chunk]))
                for ((c, *_), _), probability in zip(chunk, probabilities):
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


def blend_boxes(bundle, shape, start_row=0):
    """``(row_starts, [(r, [(x, y, w, h), ...]), ...])``: the tile-row starts of the blend scheme
    (plus the padded height) and the tiles of every row from the first touching ``start_row``."""
    tile = bundle.tile
    padded_height, padded_width = max(shape[0], tile), max(shape[1], tile)
    rows = tile_starts(padded_height, tile, bundle.overlap) + [padded_height]
    cols = tile_starts(padded_width, tile, bundle.overlap)
    first = next(i for i, r in enumerate(rows[:-1]) if r + tile > start_row)  # the first tile row touching start_row
    return rows, [(r, [(c, r, tile, tile) for c in cols]) for r in rows[first:-1]]


def margin_boxes(bundle, shape, start_row=0):
    """``(column_windows, [(row_window, [(x, y, w, h), ...]), ...])`` of the margin scheme: the
    windows of every row of cores from the one holding ``start_row``."""
    multiple = input_multiple(bundle.model)
    if bundle.tile <= 2 * bundle.margin or bundle.margin % multiple or bundle.tile % multiple:
        raise ValueError(f"tile {bundle.tile} and margin {bundle.margin} must be multiples of {multiple} "
                         f"with tile > 2 x margin")
    padded_height, padded_width = (-(-n // multiple) * multiple for n in shape)
    rows = [w for w in margin_windows(padded_height, bundle.tile, bundle.margin) if w[1] > start_row and w[0] < shape[0]]
    cols = margin_windows(padded_width, bundle.tile, bundle.margin)
    return cols, [(row, [(c0, row[2], c1 - c0, row[3] - row[2]) for _, _, c0, c1 in cols]) for row in rows]


def prediction_boxes(bundle, shape):
    """Every model-space box ``(x, y, w, h)`` that prediction of an image of ``shape`` reads
    (before tiles without tissue are skipped), in either scheme."""
    _, rows = margin_boxes(bundle, shape) if bundle.margin else blend_boxes(bundle, shape)
    return [box for _, boxes in rows for box in boxes]


#: pixels of the 256 px tiles that ``batch_size`` counts (the margin scheme's memory budget per model call)
PIXELS_PER_TILE = 256 * 256


def margin_windows(length, tile, margin):
    """``(core_start, core_stop, window_start, window_stop)`` along one axis of ``length`` px (a
    multiple of the model's input multiple): windows of at most ``tile`` px whose cores tile
    [0, length). A core keeps ``margin`` px of context on each side that is not the image edge,
    where the whole-image call has no context either: so the first window runs flush to the edge
    (core ``tile - margin``), the last is clipped at the other, and an axis of at most ``tile``
    px is one window."""
    cores = [0]
    while length - cores[-1] > (tile if cores[-1] == 0 else tile - margin):  # the rest does not fit the last window
        cores.append(cores[-1] + tile - margin * (1 if cores[-1] == 0 else 2))
    cores.append(length)
    return [(start, stop, max(start - margin, 0), min(stop + margin, length) if start else min(tile, length))
            for start, stop in zip(cores[:-1], cores[1:])]


def margin_rows(bundle, source, batch_size=8, progress=False, start_row=0):
    """:func:`probability_rows` by large tiles whose ``bundle.margin`` px border is discarded:
    each pixel is computed once, and with a margin at least the receptive-field radius
    (:func:`~nuclei_tf.models.receptive_field.inference_margin`) the result equals one model
    call on the whole (padded) image. A row of windows yields its core rows."""
    height, width = source.shape
    padded_width = -(-width // input_multiple(bundle.model)) * input_multiple(bundle.model)
    cols, boxes = margin_boxes(bundle, source.shape, start_row)
    core_of = {window0: (core0, core1) for core0, core1, window0, _ in cols}  # a window's x -> its core columns
    channels = block_channels(bundle)
    normalise = stain_function(bundle, source)
    per_call = max(1, batch_size * PIXELS_PER_TILE // bundle.tile**2)  # as many pixels per call as batch_size 256 px tiles
    kept = sum(source.has_tissue(*box) for _, row in boxes for box in row) if progress else 0
    with tqdm(total=kept, desc="tiles with tissue", unit="tile", disable=not progress, leave=False) as bar:
        for (core0, core1, window0, _), tiles in tile_rows(source, boxes, normalise):
            band = np.zeros((core1 - core0, padded_width) + channels, np.float16)  # cores are rounded as they land
            _predict_cores(bundle, tiles, band, core0 - window0, core_of, per_call, bar)
            del tiles  # the row's pixels are not needed while the consumer post-processes its block
            first, last = max(core0, start_row), min(core1, height)
            if last > first:
                yield first, band[first - core0 : last - core0, :width]


def _predict_cores(bundle, tiles, band, top, core_of, per_call, bar):
    """Predict a row of margin windows ``tiles`` and write their cores (from row ``top`` of each
    window) into ``band``; windows of one shape go through the model together."""
    height = len(band)
    for shape in {t.shape for _, t in tiles}:
        same = [(box, t) for box, t in tiles if t.shape == shape]
        for begin in range(0, len(same), per_call):
            chunk = same[begin : begin + per_call]
            for ((x, *_), _), probability in zip(chunk, bundle.probabilities(np.stack([t for _, t in chunk]))):
                left, right = core_of[x]
                band[:, left:right] = probability[top : top + height, left - x : right - x]
            bar.update(len(chunk))


def _finished_rows(total, weight, rows, width):
    """The float16 probability of the first ``rows`` rows of the band (0 where no tile was predicted)."""
    if weight is None:
        return np.maximum(total[:rows, :width], 0.0).astype(np.float16)  # -inf where no tile: 0
    covered = weight[:rows, :width]
    out = np.zeros(total[:rows, :width].shape)
    return np.divide(total[:rows, :width], covered, out=out, where=covered > 0).astype(np.float16)


def predict_probability(bundle, image, batch_size=8, progress=False):
    """The H x W float16 nucleus probability of an RGB uint8 image of any size (H x W x 2 for a
    three-class model: :func:`block_channels`)."""
    out = np.empty(image.shape[:2] + block_channels(bundle), dtype=np.float16)
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
    strip_rows = strip_rows or strip_rows_for(image.shape[1])
    if bundle.postprocess.split == "polygons":
        return polygon_strips(blocks, image.shape[0], image.shape[1], bundle.postprocess, strip_rows)
    return instance_strips(blocks, image.shape[0], bundle.postprocess, strip_rows)


def segment(bundle, image, batch_size=8, progress=False):
    """``(probability, instances)`` of an RGB uint8 image with the bundle's post-processing
    (``probability`` as :func:`predict_probability` gives it)."""
    probability = np.empty(image.shape[:2] + block_channels(bundle), dtype=np.float16)
    instances = np.zeros(image.shape[:2], dtype=np.int32)

    def kept_rows():
        for top, rows in probability_rows(bundle, image, batch_size, progress):
            probability[top : top + len(rows)] = rows
            yield top, rows

    for strip in segment_strips(bundle, image, blocks=kept_rows()):
        strip.paste(instances)
    return probability, instances
