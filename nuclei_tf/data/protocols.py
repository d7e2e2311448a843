"""The papers' data-split protocols, selectable by name and deterministic under a seed.

Every protocol returns ``{split_name: [Record, ...]}`` with ``train`` and ``val`` plus one
entry per test set; no image appears in two splits.

* ``lagree2021`` (Lagree et al. 2021): train on every non-breast MoNuSeg image of the
  training *and* test folders (36), 80:20 train/val by image; test sets
  ``monuseg-breast`` (8: six training-folder images + TCGA-AC-A2FO, TCGA-AO-A0J2) and
  ``tnbc`` (50).
* ``lagree2021-stain``: ``lagree2021``'s 36 images and split sizes (29 / 7), its validation images
  the 7 whose Macenko stain lies farthest from the others' (:mod:`nuclei_tf.data.stain_split`),
  so that validation sees stain shift; the same test sets. Independent of the seed.
* ``ledinh2021`` (Le Dinh et al. 2021): the 24 non-breast images of the training folder,
  80:20 train/val; the same two test sets.
* ``kasturi2022`` (Kasturi et al. 2022): the 30 MoNuSeg training images plus half of TNBC
  for training (80:20 train/val, our choice: the paper names no validation set), the other
  half of TNBC as ``tnbc-test``. TNBC is split by patient (``Slide_XX``): the subset of
  patients whose image count is closest to 25 of 50, drawn with the seed among ties.
* ``long2020`` (Long 2020): the DSB-2018 stage-1 download (``--dsb`` holds
  ``stage1_train/``, ``stage1_test/`` and their CSVs): the grey-scale images of
  ``stage1_train`` 80:20 train/val by image, the grey-scale images of the official
  ``stage1_test`` as ``test`` (53). When ``--dsb`` is itself one stage folder
  (``<id>/images`` entries), its grey-scale images are split 10% ``test``, the rest 80:20
  train/val (the paper's 53 of 599 held out), so a single folder can still be inspected.
* ``folder``: your own annotations (``fit --data ROOT``, :mod:`nuclei_tf.data.folder`): ROOT's
  images for training, ``ROOT/val/`` for validation when present, else ``val_fraction`` of ROOT's
  images by image; ``ROOT/test/`` as ``test`` when present. Every label is read and checked
  (:func:`~nuclei_tf.data.folder.check_pairs`) before the splits are returned.
"""
import itertools
from pathlib import Path

import numpy as np

from nuclei_tf.data.dsb import DSB2018, is_stage_folder
from nuclei_tf.data.errors import DataError
from nuclei_tf.data.folder import InstanceFolder, check_pairs, describe_folder
from nuclei_tf.data.monuseg import MoNuSeg
from nuclei_tf.data.stain_split import stain_shift_split
from nuclei_tf.data.tnbc import TNBC

VAL_FRACTION = 0.2

PROTOCOLS = {}


def protocol(name):
    """Register ``func(sources, seed) -> {split: records}`` under ``name``."""

    def register(func):
        PROTOCOLS[name] = func
        return func

    return register


class Sources:
    """The dataset roots given by the user; a protocol asks for the ones it needs."""

    def __init__(self, protocol_name, monuseg=None, tnbc=None, dsb=None, dsb_labels="auto", data=None):
        self.protocol_name = protocol_name
        self.roots = {"monuseg": monuseg, "tnbc": tnbc, "dsb": dsb, "data": data}
        self.dsb_labels = dsb_labels

    def folder(self):
        """The description of your own folder (:func:`~nuclei_tf.data.folder.describe_folder`): ``data``
        is its root, or a description already resolved (a run's ``dataset`` section)."""
        data = self.root("data")
        return describe_folder(data) if isinstance(data, (str, Path)) else data

    def root(self, key):
        root = self.roots[key]
        if root is None:
            raise DataError(f"--{key}", f"protocol '{self.protocol_name}' needs the {key} folder")
        return root

    def monuseg(self):
        return MoNuSeg(self.root("monuseg"))

    def tnbc(self):
        return TNBC(self.root("tnbc"))

    def dsb(self, stage=None):
        """The DSB-2018 folder ``--dsb``, or its sub-folder ``stage`` (labels as chosen by ``dsb_labels``)."""
        root = Path(self.root("dsb"))
        if stage is not None and not (root / stage).is_dir():
            raise DataError(root, f"expected a DSB-2018 stage folder ('<id>/images/') or the Kaggle download "
                                  f"holding '{stage}/'")
        return DSB2018(root / stage if stage else root, labels=self.dsb_labels)


def train_val_split(records, seed, val_fraction=VAL_FRACTION):
    """Shuffle by image with ``seed`` and hold out ``round(n * val_fraction)`` images for validation."""
    records = sorted(records, key=lambda r: r.id)
    order = np.random.default_rng(seed).permutation(len(records))
    n_val = int(round(len(records) * val_fraction))
    shuffled = [records[i] for i in order]
    return {"train": sorted(shuffled[n_val:], key=lambda r: r.id), "val": sorted(shuffled[:n_val], key=lambda r: r.id)}


def split_by_patient(records, seed, fraction=0.5):
    """Split records into (rest, held_out) by whole patients, held_out nearest ``fraction`` of images.

    Every subset of patients is scored by |images - fraction * total|; the seed picks one of
    the best subsets, so no patient is on both sides.
    """
    patients = sorted({r.patient for r in records})
    counts = {p: sum(r.patient == p for r in records) for p in patients}
    target = fraction * len(records)
    subsets = [
        subset
        for size in range(1, len(patients))
        for subset in itertools.combinations(patients, size)
    ]
    gaps = [abs(sum(counts[p] for p in subset) - target) for subset in subsets]
    best = [s for s, g in zip(subsets, gaps) if g == min(gaps)]
    held = set(best[np.random.default_rng(seed).integers(len(best))])
    return [r for r in records if r.patient not in held], [r for r in records if r.patient in held]


def _non_breast(records):
    return [r for r in records if r.organ != "breast"]


def _breast(records):
    return [r for r in records if r.organ == "breast"]


@protocol("lagree2021")
def lagree2021(sources, seed):
    monuseg = sources.monuseg().records()
    splits = train_val_split(_non_breast(monuseg), seed)
    splits["monuseg-breast"] = _breast(monuseg)
    splits["tnbc"] = sources.tnbc().records()
    return splits


@protocol("lagree2021-stain")
def lagree2021_stain(sources, seed):
    monuseg = sources.monuseg().records()
    training = _non_breast(monuseg)
    splits = stain_shift_split(training, len(train_val_split(training, seed)["val"]))
    splits["monuseg-breast"] = _breast(monuseg)
    splits["tnbc"] = sources.tnbc().records()
    return splits


@protocol("ledinh2021")
def ledinh2021(sources, seed):
    monuseg = sources.monuseg()
    splits = train_val_split(_non_breast(monuseg.train()), seed)
    splits["monuseg-breast"] = _breast(monuseg.records())
    splits["tnbc"] = sources.tnbc().records()
    return splits


@protocol("kasturi2022")
def kasturi2022(sources, seed):
    tnbc_train, tnbc_test = split_by_patient(sources.tnbc().records(), seed)
    splits = train_val_split(sources.monuseg().train() + tnbc_train, seed)
    splits["tnbc-test"] = tnbc_test
    return splits


@protocol("monuseg2018")
def monuseg2018(sources, seed):
    """The MoNuSeg 2018 challenge's own split (Kumar et al., IEEE TMI 2020): the 30 training
    images of every organ, 80:20 train/validation by image; test = the 14 test images."""
    monuseg = sources.monuseg()
    splits = train_val_split(monuseg.train(), seed)
    splits["monuseg-test"] = monuseg.test()
    return splits


@protocol("long2020")
def long2020(sources, seed):
    if is_stage_folder(sources.root("dsb")):
        held = train_val_split(sources.dsb().records(greyscale_only=True), seed, val_fraction=0.1)
        splits = train_val_split(held["train"], seed)
        splits["test"] = held["val"]
        return splits
    splits = long2020_train_val(sources.dsb("stage1_train"), seed)
    splits["test"] = sources.dsb("stage1_test").records(greyscale_only=True)
    return splits


def long2020_train_val(stage1_train, seed):
    """Long 2020's training data: the grey-scale images of a :class:`DSB2018` stage-1 training
    folder, 80:20 train/val by image (the paper split patches; by image no nucleus leaks)."""
    return train_val_split(stage1_train.records(greyscale_only=True), seed)


@protocol("folder")
def own_folder(sources, seed):
    data = sources.folder()
    root, labels = Path(data["root"]), data["labels"]
    records = InstanceFolder(root, labels=labels).records()
    if (root / "val").is_dir():
        splits = {"train": records, "val": InstanceFolder(root / "val", name=root.name, labels=labels).records()}
    else:
        splits = train_val_split(records, seed, data["val_fraction"])
    if (root / "test").is_dir():
        splits["test"] = InstanceFolder(root / "test", name=root.name, labels=labels).records()
    if not splits["train"]:
        raise DataError(root / "images", "holds no training image")
    for split in splits.values():
        check_pairs(split)
    return splits


#: microns per pixel of each protocol's training images, recorded in model folders: MoNuSeg
#: (TCGA slides scanned at 40x by Aperio scanners, 0.2462-0.2527 um/px) and TNBC (40x, Naylor et
#: al. 2018) are about 0.25 um/px; DSB 2018 mixes microscopes and magnifications (unknown).
TRAINING_MPP = {"lagree2021": 0.25, "lagree2021-stain": 0.25, "ledinh2021": 0.25, "kasturi2022": 0.25, "monuseg2018": 0.25, "long2020": None}


def get_protocol(name):
    """The protocol function registered under ``name`` (a clear error lists the valid names)."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown protocol '{name}'; choose one of {', '.join(sorted(PROTOCOLS))}") from None


def training_mpp(protocol_name, dataset=None):
    """Microns per pixel of a protocol's training images (:data:`TRAINING_MPP`); for ``folder``, the
    ``mpp`` of its description ``dataset`` (None: unknown)."""
    if protocol_name == "folder":
        return (dataset or {}).get("mpp")
    return TRAINING_MPP.get(protocol_name)


def split_protocol(name, monuseg=None, tnbc=None, dsb=None, seed=0, dsb_labels="auto", data=None):
    """``{split: [Record, ...]}`` for protocol ``name`` from the given dataset roots.

    ``dsb_labels`` (``auto``, ``masks`` or ``csv``) picks where DSB-2018 labels come from
    (see :class:`~nuclei_tf.data.dsb.DSB2018`); ``data``: your own folder for protocol ``folder``
    (its root, or its resolved description).
    """
    sources = Sources(name, monuseg=monuseg, tnbc=tnbc, dsb=dsb, dsb_labels=dsb_labels, data=data)
    return get_protocol(name)(sources, seed)
