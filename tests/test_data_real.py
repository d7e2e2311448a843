"""The loaders and protocols on the real MoNuSeg 2018 and TNBC downloads (skipped when absent)."""
import warnings

import numpy as np
import pytest

from nuclei_tf.data import MoNuSeg, TNBC, split_protocol
from nuclei_tf.data.monuseg_xml import parse_regions


@pytest.fixture(scope="module")
def monuseg_samples(monuseg_root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [(record, record.load()) for record in MoNuSeg(monuseg_root).records()]


def test_all_monuseg_images_load(monuseg_samples):
    assert len(monuseg_samples) == 44
    assert sum(r.label_format == "monuseg-xml" for r, _ in monuseg_samples) == 27
    for record, sample in monuseg_samples:
        assert sample.image.shape == (1000, 1000, 3) and sample.image.dtype == np.uint8
        assert sample.instances.dtype == np.int32
        ids = np.unique(sample.instances)
        assert ids[0] == 0 and np.array_equal(ids[1:], np.arange(1, len(ids))), record.id
        assert record.organ != "unknown", record.id


def test_monuseg_counts_match_xml_regions(monuseg_samples):
    for record, sample in monuseg_samples:
        if record.label_format == "monuseg-xml":
            n_regions = len(parse_regions(record.label_path))
            assert abs(sample.n_nuclei - n_regions) <= 0.02 * n_regions, record.id


def test_tnbc_has_50_images_and_4056_nuclei(tnbc_root):
    records = TNBC(tnbc_root).records()
    assert len(records) == 50 and len({r.patient for r in records}) == 11
    total = 0
    for record in records:
        sample = record.load()
        assert sample.image.shape == (512, 512, 3)
        total += sample.n_nuclei
    assert total == 4056


@pytest.mark.parametrize(
    "name, sizes",
    [
        ("lagree2021", {"train": 29, "val": 7, "monuseg-breast": 8, "tnbc": 50}),
        ("ledinh2021", {"train": 19, "val": 5, "monuseg-breast": 8, "tnbc": 50}),
        ("kasturi2022", {"train": 44, "val": 11, "tnbc-test": 25}),
    ],
)
def test_protocol_split_sizes(name, sizes, monuseg_root, tnbc_root):
    splits = split_protocol(name, monuseg=monuseg_root, tnbc=tnbc_root, seed=0)
    assert {k: len(v) for k, v in splits.items()} == sizes
    ids = [r.id for records in splits.values() for r in records]
    assert len(ids) == len(set(ids)), "an image is in two splits"


def test_lagree_breast_hold_out(monuseg_root, tnbc_root):
    splits = split_protocol("lagree2021", monuseg=monuseg_root, tnbc=tnbc_root)
    breast = {r.id[:12] for r in splits["monuseg-breast"]}
    assert {"TCGA-AC-A2FO", "TCGA-AO-A0J2", "TCGA-A7-A13E", "TCGA-E2-A14V"} <= breast
    assert all(r.organ != "breast" for r in splits["train"] + splits["val"])


def test_kasturi_splits_tnbc_by_patient(monuseg_root, tnbc_root):
    for seed in range(3):
        splits = split_protocol("kasturi2022", monuseg=monuseg_root, tnbc=tnbc_root, seed=seed)
        test_patients = {r.patient for r in splits["tnbc-test"]}
        train_patients = {r.patient for r in splits["train"] + splits["val"] if r.dataset == "tnbc"}
        assert not test_patients & train_patients
        assert sum(r.dataset == "monuseg" for r in splits["train"] + splits["val"]) == 30
