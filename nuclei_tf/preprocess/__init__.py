"""Everything between a loaded sample and a model input: stain normalisation, weight maps,
tiling and augmentation."""
from nuclei_tf.preprocess.macenko import MacenkoNormalizer, macenko_stains
from nuclei_tf.preprocess.tiling import extract_tiles, stitch, tile_grid
from nuclei_tf.preprocess.weight_map import weight_map

__all__ = ["MacenkoNormalizer", "extract_tiles", "macenko_stains", "stitch", "tile_grid", "weight_map"]
