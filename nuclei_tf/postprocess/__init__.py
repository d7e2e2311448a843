"""From a probability map to an instance map, and choosing the threshold on validation data."""
from nuclei_tf.postprocess.instances import PostProcess, probability_to_instances
from nuclei_tf.postprocess.morphology import fill_holes, remove_small_objects
from nuclei_tf.postprocess.search import search_threshold
from nuclei_tf.postprocess.watershed import watershed_split

__all__ = [
    "PostProcess",
    "fill_holes",
    "probability_to_instances",
    "remove_small_objects",
    "search_threshold",
    "watershed_split",
]
