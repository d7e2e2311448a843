"""tf.data input pipeline: protocol split -> batches of (image, target, weight map).

Images are loaded and preprocessed once, their weight maps (Ronneberger eq. 2) computed once
(and optionally cached on disk); each epoch then draws tiles, augments them jointly and
batches them. The tiles of an epoch and each tile's augmentation are pure functions of
(seed, epoch, position), so a resumed run sees exactly the same data in the same order.

Sampling modes (``PipelineConfig.sampling``):

* ``grid``: every tile of a grid with ``overlap`` (Lagree et al. 2021: 256 px, 10%);
* ``random``: ``crops_per_image`` random crops kept above ``min_foreground``;
* ``grid_random``: both, Long 2020's patches ("Training and validation set generation"): the
  256 px grid with re-crops flush with the image edges, plus random crops whose nucleus
  ratio exceeds a threshold (0.4), drawn anew every epoch;
* ``whole``: each whole image, resized to ``resize`` (Le Dinh et al. 2021: 256).

``normalize: percentile`` scales each image by its own 1st and 99.8th percentiles (StarDist's
input normalisation, :mod:`nuclei_tf.preprocess.percentile`), taken once per image and applied to
each of its tiles after augmentation; ``none`` divides 8-bit pixels by 255.

Images smaller than a tile are padded by reflection (``pad: reflect``) or with zeros
(``pad: constant``, Long 2020: "zero-padding was applied"). ``weight_maps: false`` skips
the weight maps for losses that do not use them (the stream then carries ones).

Targets (``classes``, set from the model's head by the experiment config): 1, the nucleus
mask; 2, one-hot (background, nucleus); 3 (the three_class head), one-hot (background,
interior, boundary) of Kumar et al. 2017 with boundaries ``boundary_width`` px wide
(:mod:`nuclei_tf.data.targets`); 4 (the hv head), HoVer-Net's horizontal and vertical distance
maps then one-hot (background, nucleus) (:mod:`nuclei_tf.data.hv_targets`); 33 (the rays head),
StarDist's 32 ray distances then the object probability (:mod:`nuclei_tf.data.star_targets`).
These are built after augmentation from the augmented instance map (ids move with
nearest-neighbour, like the weight map), so touching nuclei keep the boundary between them and
the distance maps' signs and the rays follow every flip and rotation.

``offline="kasturi2022"`` first replaces each image by its flip-H, flip-V and rotate-45
variants down-sampled to ``offline_size`` (Kasturi et al. 2022, Algorithm 1).
"""
import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from nuclei_tf.data.errors import DataError
from nuclei_tf.data.hv_targets import HV_CHANNELS, hv_targets
from nuclei_tf.data.star_targets import RAY_CHANNELS, star_targets
from nuclei_tf.data.targets import three_class_targets
from nuclei_tf.preprocess.augment import Augmenter, kasturi_variants, resize
from nuclei_tf.preprocess.percentile import PercentileNormalizer
from nuclei_tf.preprocess.tiling import pad_to, random_crop_starts, tile_grid
from nuclei_tf.preprocess.weight_map import weight_map

SAMPLING = ("grid", "random", "grid_random", "whole")
NORMALIZE = ("none", "percentile")
PADDING = ("reflect", "constant")
#: target channels built from the instance map itself (three-class, hv), not from the binary mask
INSTANCE_TARGETS = (3, HV_CHANNELS, RAY_CHANNELS)


@dataclass(frozen=True)
class PipelineConfig:
    """Every knob of the input pipeline; experiments set them from YAML."""

    tile: int = 256
    sampling: str = "grid"
    overlap: float = 0.1
    crops_per_image: int = 16
    min_foreground: float = 0.0
    resize: Optional[int] = None
    offline: Optional[str] = None
    offline_size: int = 512
    augment: Optional[dict] = field(default=None)
    classes: int = 1
    boundary_width: int = 2
    w0: float = 10.0
    sigma: float = 5.0
    weight_maps: bool = True
    pad: str = "reflect"
    normalize: str = "none"
    batch_size: int = 8
    seed: int = 0

    def __post_init__(self):
        if self.sampling not in SAMPLING:
            raise ValueError(f"sampling must be one of {SAMPLING}, got {self.sampling!r}")
        if self.sampling == "whole" and self.resize is None and self.offline is None:
            raise ValueError("sampling 'whole' needs resize (e.g. 256) or offline variants of a fixed size")
        if self.classes not in (1, 2) + INSTANCE_TARGETS:
            raise ValueError(f"classes must be 1 (sigmoid), 2 (softmax), 3 (three-class head), {HV_CHANNELS} (hv head) "
                             f"or {RAY_CHANNELS} (rays head), got {self.classes}")
        if self.boundary_width < 1:
            raise ValueError(f"boundary_width must be >= 1 px, got {self.boundary_width}")
        if self.normalize not in NORMALIZE:
            raise ValueError(f"normalize must be one of {NORMALIZE}, got {self.normalize!r}")
        if self.pad not in PADDING:
            raise ValueError(f"pad must be one of {PADDING}, got {self.pad!r}")
        if self.offline not in (None, "kasturi2022"):
            raise ValueError(f"offline must be None or 'kasturi2022', got {self.offline!r}")

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, config):
        return cls(**config)


@dataclass(frozen=True)
class Prepared:
    """One training image after loading, preprocessing and weight-map computation: ``mask`` is
    the binary mask, or the int32 instance map for three-class and hv targets; ``weights`` is None
    when the config asks for no weight maps; ``intensity`` the image's percentiles for
    ``normalize: percentile`` (None otherwise)."""

    id: str
    image: np.ndarray
    mask: np.ndarray
    weights: Optional[np.ndarray]
    intensity: Optional[tuple] = None


def _checked(image, record):
    """Reject NaN/Inf (from a preprocessing step) naming the image."""
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise DataError(record.image_path, "holds NaN or Inf after preprocessing")
    return image


def cached_weight_map(instances, config, cache_dir=None):
    """:func:`weight_map`, read from / written to ``cache_dir`` keyed by the instance map's hash."""
    if cache_dir is None:
        return weight_map(instances, config.w0, config.sigma)
    key = hashlib.sha1(instances.tobytes() + repr((instances.shape, config.w0, config.sigma)).encode()).hexdigest()
    path = Path(cache_dir) / f"weights-{key}.npy"
    if path.is_file():
        return np.load(path)
    weights = weight_map(instances, config.w0, config.sigma)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, weights)
    tmp.replace(path)
    return weights


def prepare(records, config=PipelineConfig(), preprocess=None, cache_dir=None):
    """Load every record once: image (after ``preprocess``), mask (see :class:`Prepared`) and weight map."""
    prepared = []
    for record in records:
        sample = record.load()
        pairs = [(sample.image, sample.instances)]
        if config.offline == "kasturi2022":
            pairs = kasturi_variants(sample.image, sample.instances, config.offline_size)
        for index, (image, instances) in enumerate(pairs):
            if config.resize is not None:
                image = resize(image, config.resize, cv2.INTER_AREA)
                instances = resize(instances.astype(np.float32), config.resize, cv2.INTER_NEAREST).astype(np.int32)
            if preprocess is not None:
                image = preprocess(image)
            suffix = f"#{index}" if len(pairs) > 1 else ""
            weights = cached_weight_map(instances, config, cache_dir) if config.weight_maps else None
            mask = instances.astype(np.int32) if config.classes in INSTANCE_TARGETS else (instances > 0).astype(np.uint8)
            image = _checked(np.asarray(image), record)
            intensity = PercentileNormalizer().source_statistics(image) if config.normalize == "percentile" else None
            prepared.append(Prepared(record.id + suffix, image, mask, weights, intensity))
    return prepared


def example_seed(*parts):
    """A 32-bit seed that depends only on ``parts`` (run seed, epoch, position)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


class TrainingPipeline:
    """Tiles of prepared images as a tf.data.Dataset of (image, target, weights) batches.

    ``training=False`` gives the validation stream: a non-overlapping grid (or the whole
    images), unshuffled and unaugmented, last partial batch kept.
    """

    def __init__(self, prepared, config=PipelineConfig(), training=True):
        if not prepared:
            raise ValueError("no images to build a pipeline from")
        self.prepared, self.config, self.training = prepared, config, training
        self.size = config.resize or (config.offline_size if config.sampling == "whole" else config.tile)
        self.augmenter = Augmenter(config.augment) if training else Augmenter({})

    def items(self, epoch):
        """(image index, row, col) of every tile of ``epoch``, in the order they are served."""
        config, size = self.config, self.size
        items = []
        if config.sampling == "whole":
            items = [(i, 0, 0) for i in range(len(self.prepared))]
        if config.sampling in ("grid", "grid_random") or (config.sampling == "random" and not self.training):
            overlap = config.overlap if self.training else 0.0
            items = [(i, r, c) for i, p in enumerate(self.prepared) for r, c in tile_grid(p.mask.shape, size, overlap)]
        if config.sampling in ("random", "grid_random") and self.training:
            items += [
                (i, r, c)
                for i, p in enumerate(self.prepared)
                for r, c in random_crop_starts(p.mask, size, config.crops_per_image, config.min_foreground,
                                               rng=example_seed(config.seed, epoch, i))
            ]
        items = np.asarray(items, dtype=np.int64).reshape(-1, 3)
        if self.training:
            items = items[np.random.default_rng(example_seed(config.seed, epoch)).permutation(len(items))]
        return items

    def steps(self, epoch=0):
        n = len(self.items(epoch))
        return n // self.config.batch_size if self.training else -(-n // self.config.batch_size)

    def example(self, epoch, position, item):
        """One (image float32 [0,1], target, weights) example, numpy."""
        index, r, c = (int(v) for v in item)
        p, size = self.prepared[index], self.size
        image = pad_to(p.image, size, size, mode=self.config.pad)[r : r + size, c : c + size]
        mask = pad_to(p.mask, size, size, mode="constant")[r : r + size, c : c + size]
        if p.weights is None:
            weights = np.ones(mask.shape, np.float32)
        else:
            weights = pad_to(p.weights, size, size, mode="constant")[r : r + size, c : c + size]
        image, mask, weights = self.augmenter(image, mask, weights, example_seed(self.config.seed, epoch, position))
        if p.intensity is not None:
            image = PercentileNormalizer().apply(image, p.intensity)
        else:
            image = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
        return image, self.target(mask), weights.astype(np.float32)[..., None]

    def target(self, mask):
        """The float32 (size, size, classes) target of an augmented tile's mask (see the module docstring)."""
        if self.config.classes == 3:
            return three_class_targets(mask, self.config.boundary_width)
        if self.config.classes == HV_CHANNELS:
            return hv_targets(mask)
        if self.config.classes == RAY_CHANNELS:
            return star_targets(mask)
        if self.config.classes == 2:
            return np.stack([1 - mask, mask], axis=-1).astype(np.float32)
        return mask[..., None].astype(np.float32)

    def dataset(self, epoch=0, skip_batches=0):
        """The batches of ``epoch`` as a tf.data.Dataset, optionally skipping the first ones (resume)."""
        import tensorflow as tf

        items = self.items(epoch)
        size, channels = self.size, self.prepared[0].image.shape[-1]

        def load(position, item):
            image, target, weights = tf.numpy_function(
                lambda k, it: self.example(epoch, k, it), [position, item], [tf.float32] * 3, stateful=False
            )
            image.set_shape((size, size, channels))
            target.set_shape((size, size, self.config.classes))
            weights.set_shape((size, size, 1))
            return image, target, weights

        data = tf.data.Dataset.from_tensor_slices((np.arange(len(items), dtype=np.int64), items))
        data = data.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        data = data.batch(self.config.batch_size, drop_remainder=self.training)
        return data.skip(skip_batches).prefetch(tf.data.AUTOTUNE)
