"""Everything between a loaded sample and a model input: stain normalisation, ..."""
from nuclei_tf.preprocess.macenko import MacenkoNormalizer, macenko_stains

__all__ = ["MacenkoNormalizer", "macenko_stains"]
