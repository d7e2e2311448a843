"""Tiles for training and inference, and stitching them back.

* :func:`tile_starts`: a grid of ``tile``-sized windows with an ``overlap`` fraction
  (Lagree et al. 2021: 10% for training, 50% at test); the last window is re-cropped
  flush with the image edge (Long 2020's edge re-crops) so every pixel is covered.
* :func:`pad_to` pads images smaller than a tile (reflect for images, 0 for labels).
* :func:`stitch` blends overlapping predictions: ``mean``, ``max`` (Long 2020) or
  ``smooth`` (a separable Hann-like window that down-weights tile borders).
* :func:`random_crop_starts`: Long 2020's random crops, kept only when their foreground
  ratio reaches a minimum.
"""
import numpy as np


def tile_starts(length, tile, overlap=0.0):
    """Start offsets of windows of size ``tile`` covering ``[0, length)`` with the given overlap."""
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must lie in [0, 1), got {overlap}")
    if length <= tile:
        return [0]
    stride = max(1, int(round(tile * (1.0 - overlap))))
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def pad_to(array, height, width, mode="reflect"):
    """Pad the first two axes at the bottom/right up to at least (height, width)."""
    pad_h, pad_w = max(0, height - array.shape[0]), max(0, width - array.shape[1])
    if pad_h == pad_w == 0:
        return array
    pads = [(0, pad_h), (0, pad_w)] + [(0, 0)] * (array.ndim - 2)
    if mode == "reflect" and (pad_h >= array.shape[0] or pad_w >= array.shape[1]):
        mode = "symmetric"  # reflect cannot pad by more than the size
    return np.pad(array, pads, mode=mode) if mode != "constant" else np.pad(array, pads)


def tile_grid(shape, tile, overlap=0.0):
    """(row, col) starts of every tile of an image of ``shape`` (after padding to ``tile``)."""
    height, width = max(shape[0], tile), max(shape[1], tile)
    return [(r, c) for r in tile_starts(height, tile, overlap) for c in tile_starts(width, tile, overlap)]


def extract_tiles(image, tile=256, overlap=0.0, mode="reflect"):
    """``(tiles, starts)``: an N x tile x tile [x C] stack and the (row, col) of each tile."""
    padded = pad_to(image, tile, tile, mode)
    starts = tile_grid(image.shape, tile, overlap)
    tiles = np.stack([padded[r : r + tile, c : c + tile] for r, c in starts])
    return tiles, starts


def blend_window(tile, kind):
    """Per-pixel weight of a tile for ``mean`` (flat) or ``smooth`` blending."""
    if kind == "mean":
        return np.ones((tile, tile))
    if kind == "smooth":
        ramp = np.sin(np.pi * (np.arange(tile) + 0.5) / tile) ** 2
        return np.outer(ramp, ramp) + 1e-3
    raise ValueError(f"unknown blend {kind!r}; choose mean, max or smooth")


def stitch(tiles, starts, shape, blend="mean"):
    """Merge (N, t, t[, C]) tiles at ``starts`` into an array of ``shape`` (H, W[, C])."""
    tiles = np.asarray(tiles, dtype=np.float32)
    tile = tiles.shape[1]
    height, width = max(shape[0], tile), max(shape[1], tile)
    out_shape = (height, width) + tuple(tiles.shape[3:])
    if blend == "max":
        out = np.full(out_shape, -np.inf, dtype=np.float32)
        for t, (r, c) in zip(tiles, starts):
            np.maximum(out[r : r + tile, c : c + tile], t, out=out[r : r + tile, c : c + tile])
        return out[: shape[0], : shape[1]]
    # float64 accumulation: the weighted mean of equal float32 values rounds back to them exactly
    window = blend_window(tile, blend).astype(np.float64).reshape((tile, tile) + (1,) * (tiles.ndim - 3))
    total = np.zeros(out_shape, dtype=np.float64)
    norm = np.zeros((height, width) + (1,) * (tiles.ndim - 3), dtype=np.float64)
    for t, (r, c) in zip(tiles, starts):
        total[r : r + tile, c : c + tile] += t * window
        norm[r : r + tile, c : c + tile] += window
    return (total / norm)[: shape[0], : shape[1]].astype(np.float32)


def random_crop_starts(instances, tile, count, min_foreground=0.0, rng=None, max_tries=50):
    """Up to ``count`` random (row, col) crops whose nucleus-pixel ratio is >= ``min_foreground``.

    Each crop gets ``max_tries`` draws; a crop that never reaches the ratio is dropped
    (Long 2020 kept only informative random patches).
    """
    rng = np.random.default_rng(rng)
    height, width = max(instances.shape[0], tile), max(instances.shape[1], tile)
    foreground = pad_to(instances > 0, tile, tile, mode="constant")
    integral = np.pad(foreground.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    starts = []
    for _ in range(count):
        for _ in range(max_tries):
            r, c = int(rng.integers(0, height - tile + 1)), int(rng.integers(0, width - tile + 1))
            area = integral[r + tile, c + tile] - integral[r, c + tile] - integral[r + tile, c] + integral[r, c]
            if area >= min_foreground * tile * tile:
                starts.append((r, c))
                break
    return starts
