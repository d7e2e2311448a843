"""Everything between a loaded sample and a model input: stain normalisation, U-Net+ CLAHE +
total-variation pre-processing, weight maps, tiling and augmentation."""
from nuclei_tf.preprocess.clahe_tv import clahe_tv
from nuclei_tf.preprocess.macenko import BackgroundError, MacenkoNormalizer, macenko_stains
from nuclei_tf.preprocess.stain import BACKENDS, METHODS, StaintoolsNormalizer, stain_normalizer
from nuclei_tf.preprocess.tiling import extract_tiles, stitch, tile_grid
from nuclei_tf.preprocess.weight_map import weight_map

__all__ = [
    "BACKENDS",
    "METHODS",
    "BackgroundError",
    "MacenkoNormalizer",
    "StaintoolsNormalizer",
    "clahe_tv",
    "extract_tiles",
    "macenko_stains",
    "stain_normalizer",
    "stitch",
    "tile_grid",
    "weight_map",
]
