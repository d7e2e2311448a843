"""Classical (non-learned) nuclei segmentation baselines of Lagree et al. 2021, Table 2a."""
from nuclei_tf.baselines.classical import BASELINES, fiji_like, otsu, watershed_transform

__all__ = ["BASELINES", "fiji_like", "otsu", "watershed_transform"]
