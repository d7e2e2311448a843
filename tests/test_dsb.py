"""DSB 2018 stage 1: Kaggle run-length encoding, its CSVs, mask PNGs, label selection and long2020."""
import warnings

import numpy as np
import pytest
from conftest import disk_instances, dsb_images, write_dsb_stage
from PIL import Image

from nuclei_tf.data import DSB2018, DataError, split_protocol
from nuclei_tf.data.dsb import is_greyscale
from nuclei_tf.data.io import read_image, read_mask
from nuclei_tf.data.rle import RunLengthError, decode, encode, read_csv

# ---- run-length encoding -----------------------------------------------------------------


def test_column_major_order_on_a_hand_made_example():
    mask = np.array([[1, 0, 0, 1],
                     [1, 1, 0, 0],
                     [0, 0, 0, 1]], dtype=bool)
    # pixels are numbered down the columns: column 0 is 1-3, column 1 is 4-6, column 3 is 10-12
    assert encode(mask) == "1 2 5 1 10 1 12 1"
    assert np.array_equal(decode("1 2 5 1 10 1 12 1", (3, 4)), mask)
    assert decode("4 3", (3, 4))[:, 1].all() and decode("4 3", (3, 4)).sum() == 3


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (6, 1), (5, 9), (32, 17)])
def test_round_trip_on_random_masks(shape):
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    for density in (0.0, 0.3, 0.7, 1.0):
        mask = rng.random(shape) < density
        mask[0, 0] = mask[-1, -1] = density > 0.5  # the first and last pixel, set or not
        encoded = encode(mask)
        assert np.array_equal(decode(encoded, shape), mask)
        assert decode(encoded, shape).dtype == bool
    assert encode(np.ones((1, 1))) == "1 1" and encode(np.zeros((1, 1))) == ""
    assert encode(np.ones(shape)) == f"1 {shape[0] * shape[1]}"


@pytest.mark.parametrize(
    "encoded, match",
    [
        ("1 2 3", "odd number of tokens"),
        ("1 two", "token 'two' is not an integer"),
        ("1.5 2", "token '1.5' is not an integer"),
        ("0 2", "start 0 of pair 1 is below 1"),
        ("-3 2", "start -3 of pair 1 is below 1"),
        ("1 0", "length 0 of pair 1 is below 1"),
        ("11 3", "outside the 3 x 4 image"),
        ("5 2 1 2", "runs not increasing: pair 2 starts at 1"),
        ("1 5 3 2", "runs not increasing"),
    ],
)
def test_decode_rejects_bad_strings(encoded, match):
    with pytest.raises(RunLengthError, match=match):
        decode(encoded, (3, 4))


# ---- the CSVs ----------------------------------------------------------------------------


def _stage(tmp_path, shapes=(("a", (4, 4)), ("b", (4, 4)))):
    """A stage1_train folder without masks; the caller writes ../stage1_train_labels.csv."""
    for image_id, shape in shapes:
        (tmp_path / "stage1_train" / image_id / "images").mkdir(parents=True)
        Image.fromarray(np.zeros(shape, np.uint8)).save(tmp_path / "stage1_train" / image_id / "images" / f"{image_id}.png")
    return tmp_path / "stage1_train"


def _load_all(stage):
    return [record.load() for record in DSB2018(stage, labels="csv").records()]


TRAIN = "ImageId,EncodedPixels\n"
SOLUTION = "ImageId,EncodedPixels,Height,Width,Usage\n"


@pytest.mark.parametrize(
    "text, line, match",
    [
        (TRAIN + "a,1 2\na,5 2 9\n", 3, "odd number of tokens"),
        (TRAIN + "a,1 two\n", 2, "token 'two' is not an integer"),
        (TRAIN + "a,1 2\nb,0 2\n", 3, "start 0 of pair 1 is below 1"),
        (TRAIN + "a,15 3\n", 2, "run '15 3' ends at pixel 17, outside the 4 x 4 image"),
        (TRAIN + "a,5 2 1 2\n", 2, "runs not increasing"),
        (TRAIN + "a,1 3\nb,1 1\na,1 3\n", 4, "covers every pixel of the nucleus on line 2 of image a \\(a duplicate row\\?\\)"),
        (TRAIN + "a,6 1\na,5 3\n", 3, "covers every pixel of the nucleus on line 2 of image a"),
        (TRAIN + "a,1 2\nzzz,1 2\n", 3, "ImageId zzz has no image folder"),
        ("Id,Pixels\na,1 2\n", 1, "header lacks EncodedPixels, ImageId"),
        (SOLUTION + "a,1 2,4,4,Public\nb,1 2,5,4,Public\n", 3, "Height/Width 5 x 4 disagree with image b of size 4 x 4"),
        (SOLUTION + "a,1 2,four,4,Public\n", 2, "Height/Width 'four', '4' are not integers"),
        (SOLUTION + "a,1 2,4\n", 2, "expected 5 fields"),
    ],
    ids=["odd", "non-integer", "start-0", "outside", "not-increasing", "duplicate", "swallowed", "unknown-id",
         "header", "size-mismatch", "size-not-integer", "short-row"],
)
def test_bad_csv_rows_name_the_file_and_line(tmp_path, text, line, match):
    stage = _stage(tmp_path)
    csv_path = tmp_path / "stage1_train_labels.csv"
    csv_path.write_text(text)
    with pytest.raises(DataError, match=f"line {line}: {match}") as info:
        _load_all(stage)
    assert str(info.value).startswith(f"{csv_path}: line {line}: ")


def test_partial_overlap_goes_to_the_later_row_with_a_warning(tmp_path):
    stage = _stage(tmp_path, (("a", (4, 4)),))
    (tmp_path / "stage1_train_labels.csv").write_text(TRAIN + "a,1 3\na,3 2\n")
    with pytest.warns(UserWarning, match="image a: 1 pixel\\(s\\) claimed by two nuclei \\(lines 2/3: 1\\)"):
        (sample,) = _load_all(stage)
    assert sample.instances[:, 0].tolist() == [1, 1, 2, 2] and sample.n_nuclei == 2


def test_image_without_rows_warns_and_is_empty(tmp_path):
    stage = _stage(tmp_path)
    (tmp_path / "stage1_train_labels.csv").write_text(TRAIN + "a,1 2 6 2\na,16 1\n")
    a, b = DSB2018(stage, labels="csv").records()
    with pytest.warns(UserWarning, match="stage1_train_labels.csv: no row for image b"):
        assert not b.load_instances().any()
    instances = a.load_instances()
    assert instances.dtype == np.int32 and instances.T.ravel().tolist() == [1, 1, 0, 0, 0, 1, 1] + [0] * 8 + [2]


def test_empty_encoded_pixels_is_an_image_without_nucleus(tmp_path):
    stage = _stage(tmp_path, (("a", (4, 4)),))
    (tmp_path / "stage1_train_labels.csv").write_text(TRAIN + "a,\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (sample,) = _load_all(stage)
    assert sample.n_nuclei == 0


def test_unreadable_csv(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_bytes(b"ImageId,EncodedPixels\n\xff\xfe,1 2\n")
    with pytest.raises(DataError, match="labels.csv: cannot be read as a UTF-8 CSV"):
        read_csv(path)
    with pytest.raises(DataError, match="nowhere.csv: file not found"):
        read_csv(tmp_path / "nowhere.csv")


def test_csv_is_parsed_once_per_file_version(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(TRAIN + "a,1 2\n")
    assert read_csv(path) is read_csv(path)
    path.write_text(TRAIN + "a,1 2\nb,3 1\n")
    assert set(read_csv(path).rows) == {"a", "b"}


# ---- masks and the choice of labels ---------------------------------------------------------


def test_csv_and_masks_give_the_same_instances(tmp_path):
    stage = tmp_path / "stage1_test"
    write_dsb_stage(stage, dsb_images("x", 3, 1), csv_path=tmp_path / "stage1_solution.csv", solution=True)
    from_masks = [r.load() for r in DSB2018(stage, labels="masks").records()]
    from_csv = [r.load() for r in DSB2018(stage, labels="csv").records()]
    assert [s.n_nuclei for s in from_masks] == [1, 2, 3, 4]
    for a, b in zip(from_masks, from_csv):
        assert a.id == b.id and np.array_equal(a.instances, b.instances) and np.array_equal(a.image, b.image)


@pytest.mark.parametrize(
    "pixels",
    [
        lambda m: m,  # grey
        lambda m: np.dstack([m, m, m]),  # RGB
        lambda m: np.dstack([m, m, m, np.full_like(m, 255)]),  # RGBA
        lambda m: np.dstack([m, np.full_like(m, 255)]),  # grey + alpha
        lambda m: m > 0,  # 1-bit
    ],
    ids=["grey", "rgb", "rgba", "grey-alpha", "1-bit"],
)
def test_mask_pngs_in_every_mode(tmp_path, pixels):
    mask = disk_instances((16, 16), [(8, 8)], 4) > 0
    Image.fromarray(pixels(mask.astype(np.uint8) * 255)).save(tmp_path / "m.png")
    assert np.array_equal(read_mask(tmp_path / "m.png"), mask)


def test_colour_mask_with_differing_channels_is_an_error(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[2, 2] = (255, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "red.png")
    with pytest.raises(DataError, match="red.png: mask has differing R, G, B channels"):
        read_mask(tmp_path / "red.png")


def test_rgba_mask_folder_loads(synthetic_dsb):
    entry = synthetic_dsb / "img00" / "masks"
    mask = np.asarray(Image.open(entry / "m0.png"))
    Image.fromarray(np.dstack([mask] * 3 + [np.full_like(mask, 255)])).save(entry / "m0.png")
    assert DSB2018(synthetic_dsb).records()[0].load().n_nuclei == 2


def test_label_source_selection(tmp_path):
    stage = tmp_path / "stage1_train"
    write_dsb_stage(stage, dsb_images("s", 2, 0), csv_path=tmp_path / "stage1_train_labels.csv")
    formats = lambda dsb: {r.label_format for r in dsb.records()}  # noqa: E731
    assert formats(DSB2018(stage)) == {"mask-folder"}  # both present: auto takes the masks
    assert formats(DSB2018(stage, labels="csv")) == {"dsb-rle"}
    for mask in (stage / "s01" / "masks").iterdir():
        mask.unlink()
    auto = DSB2018(stage)  # one empty masks/ folder: auto takes the CSV beside the folder
    assert formats(auto) == {"dsb-rle"} and auto.csv_path == tmp_path / "stage1_train_labels.csv"
    assert DSB2018(stage, labels="masks").records()[1].load().n_nuclei == 0
    (stage / "s01" / "masks").rmdir()
    with pytest.raises(DataError, match="s01: has no 'masks/' folder"):
        DSB2018(stage, labels="masks")
    (tmp_path / "stage1_train_labels.csv").rename(stage / "stage1_train_labels.csv")
    assert DSB2018(stage).csv_path == stage / "stage1_train_labels.csv"  # the CSV inside the folder
    (stage / "stage1_train_labels.csv").unlink()
    with pytest.raises(DataError, match="no stage1_train_labels.csv beside or inside the folder \\(entry s01 has no mask\\)"):
        DSB2018(stage)
    with pytest.raises(ValueError, match="labels must be one of auto, masks, csv"):
        DSB2018(stage, labels="png")


def test_test_stage_reads_the_solution_csv(synthetic_dsb_download):
    test = DSB2018(synthetic_dsb_download / "stage1_test", labels="csv")
    assert test.csv_path == synthetic_dsb_download / "stage1_solution.csv"
    assert [r.load().n_nuclei for r in test.records()] == [1, 2, 3, 4]


# ---- long2020 on the download layout ------------------------------------------------------


def test_long2020_on_the_download(synthetic_dsb_download):
    splits = split_protocol("long2020", dsb=synthetic_dsb_download, seed=1)
    assert {k: len(v) for k, v in splits.items()} == {"train": 4, "val": 1, "test": 3}
    ids = [r.id for records in splits.values() for r in records]
    assert len(ids) == len(set(ids)), "an image is in two splits"
    assert {r.id for r in splits["train"] + splits["val"]} == {f"tr{i:02d}" for i in range(5)}
    assert [r.id for r in splits["test"]] == ["te00", "te01", "te02"]
    assert all(is_greyscale(read_image(r.image_path)) for records in splits.values() for r in records)
    assert {r.label_format for r in splits["train"]} == {"dsb-rle"} and {r.label_format for r in splits["test"]} == {"mask-folder"}
    forced = split_protocol("long2020", dsb=synthetic_dsb_download, seed=1, dsb_labels="csv")
    assert [r.load().n_nuclei for r in forced["test"]] == [r.load().n_nuclei for r in splits["test"]] == [1, 2, 3]
    assert split_protocol("long2020", dsb=synthetic_dsb_download, seed=1) == splits


def test_long2020_on_one_stage_folder_and_bad_roots(synthetic_dsb_download, tmp_path):
    single = split_protocol("long2020", dsb=synthetic_dsb_download / "stage1_train")
    assert {k: len(v) for k, v in single.items()} == {"train": 4, "val": 1, "test": 0}
    with pytest.raises(DataError, match="or the Kaggle download holding 'stage1_train/'"):
        split_protocol("long2020", dsb=tmp_path / "empty")
    (synthetic_dsb_download / "stage1_test").rename(tmp_path / "elsewhere")
    with pytest.raises(DataError, match="holding 'stage1_test/'"):
        split_protocol("long2020", dsb=synthetic_dsb_download)
