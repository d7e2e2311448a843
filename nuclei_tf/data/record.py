"""A dataset entry (:class:`Record`, paths + metadata) and its loaded form (:class:`Sample`)."""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from nuclei_tf.data.errors import DataError
from nuclei_tf.data.io import image_shape, read_image, read_label
from nuclei_tf.data.labels import binary_to_instances, read_mask_folder, relabel_contiguous
from nuclei_tf.data.monuseg_xml import rasterise_xml
from nuclei_tf.data.rle import read_csv


@dataclass(frozen=True)
class Sample:
    """One image with its ground truth: uint8 H x W x 3 image, int32 H x W instances (0 = background, 1..N)."""

    id: str
    dataset: str
    organ: str
    patient: str
    image: np.ndarray = field(repr=False)
    instances: np.ndarray = field(repr=False)

    @property
    def n_nuclei(self):
        return int(self.instances.max(initial=0))


def _instances_from_xml(record, shape):
    return rasterise_xml(record.label_path, shape)


def _instances_from_image(record, shape):
    return relabel_contiguous(read_label(record.label_path))


def _instances_from_binary(record, shape):
    return binary_to_instances(read_label(record.label_path))


def _instances_from_mask_folder(record, shape):
    return read_mask_folder(record.label_path, shape)


def _instances_from_rle(record, shape):
    """DSB run-length CSV (``label_path``): the rows whose ImageId is ``record.id``."""
    return read_csv(record.label_path).instances(record.id, shape)


#: label_format -> reader(record, image_shape) -> int32 instance map.
LABEL_READERS = {
    "monuseg-xml": _instances_from_xml,
    "instance-image": _instances_from_image,
    "binary-components": _instances_from_binary,
    "mask-folder": _instances_from_mask_folder,
    "dsb-rle": _instances_from_rle,
}


@dataclass(frozen=True)
class Record:
    """Where one sample lives on disk and what it is; nothing is read until :meth:`load`."""

    id: str
    dataset: str
    organ: str
    patient: str
    image_path: Path
    label_path: Optional[Path]
    label_format: str

    def load_image(self):
        return read_image(self.image_path)

    def load_instances(self, shape=None):
        """The int32 instance map; ``shape`` (H, W) is read from the image header when not given."""
        if self.label_path is None:
            raise DataError(self.image_path, "has no ground truth (no XML or label image found)")
        if shape is None:
            shape = image_shape(self.image_path)
        return LABEL_READERS[self.label_format](self, shape)

    def load(self):
        """Read image and ground truth; their sizes must agree."""
        image = self.load_image()
        instances = self.load_instances(image.shape[:2])
        if instances.shape != image.shape[:2]:
            raise DataError(
                self.label_path,
                f"label size {instances.shape} does not match image {Path(self.image_path).name} "
                f"of size {image.shape[:2]}",
            )
        return Sample(self.id, self.dataset, self.organ, self.patient, image, instances)
