"""`nuclei-tf evaluate` / `nuclei-tf baseline`: reports, and one clear error per bad prediction."""
import csv
import re
import json

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from nuclei_tf.cli.main import cli
from nuclei_tf.data import split_protocol


@pytest.fixture
def data_args(synthetic_monuseg, synthetic_tnbc):
    return ["--monuseg", str(synthetic_monuseg), "--tnbc", str(synthetic_tnbc)]


def write_ground_truth_as_predictions(folder, data_args, transform=lambda x: x):
    splits = split_protocol("lagree2021", monuseg=data_args[1], tnbc=data_args[3])
    for split in ("monuseg-breast", "tnbc"):
        (folder / split).mkdir(parents=True)
        for record in splits[split]:
            tifffile.imwrite(folder / split / f"{record.id}.tif", transform(record.load().instances))


def invoke(args):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_perfect_predictions_score_one(tmp_path, data_args):
    write_ground_truth_as_predictions(tmp_path / "pred", data_args)
    result = invoke(["evaluate", "--predictions", str(tmp_path / "pred"), *data_args, "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert set(report["splits"]) == {"monuseg-breast", "tnbc"}
    for split in report["splits"].values():
        assert split["mean"]["aji"] == 1.0 and split["pooled"]["map"] == 1.0
    rows = list(csv.DictReader(open(tmp_path / "rep" / "per_image.csv")))
    assert len(rows) == 6 and {"aji", "aji_plus", "pq", "map", "f1@0.7", "pixel_jaccard"} <= set(rows[0])
    assert "| AJI | mAP | F1(0.7) |" in (tmp_path / "rep" / "summary.md").read_text()
    assert (tmp_path / "rep" / "ap_vs_iou.png").stat().st_size > 1000


def test_label_files_with_a_trailing_singleton_axis_are_one_image(tmp_path, data_args):
    """(H, W, 1) label TIFFs (as numpy or napari save them) were called 'a stack of H images'."""
    write_ground_truth_as_predictions(tmp_path / "pred", data_args, transform=lambda x: x[..., None])
    assert tifffile.imread(next((tmp_path / "pred" / "tnbc").iterdir())).ndim == 3
    result = invoke(["evaluate", "--predictions", str(tmp_path / "pred"), *data_args, "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert all(split["mean"]["aji"] == 1.0 for split in report["splits"].values())


def test_baseline_command_saves_predictions(tmp_path, data_args):
    result = invoke(["baseline", "--method", "otsu", *data_args, "--out", str(tmp_path / "otsu"), "--split", "tnbc"])
    assert result.exit_code == 0, result.output
    saved = sorted(p.name for p in (tmp_path / "otsu" / "predictions" / "tnbc").iterdir())
    assert saved == ["tnbc-01_1.tif", "tnbc-01_2.tif", "tnbc-02_1.tif", "tnbc-03_1.tif"]
    assert tifffile.imread(tmp_path / "otsu" / "predictions" / "tnbc" / saved[0]).dtype == np.int32


@pytest.mark.parametrize(
    "transform, match",
    [
        (lambda x: x[:-1], r"tnbc-01_1: prediction shape \(31, 32\) != ground truth shape \(32, 32\)"),
        (lambda x: x.astype(np.float32) + 0.25, "tnbc-01_1.tif: label map holds non-integer ids"),
        (lambda x: -x.astype(np.int16), "tnbc-01_1.tif: label map holds negative ids"),
    ],
)
def test_bad_predictions_name_the_image(tmp_path, data_args, transform, match):
    write_ground_truth_as_predictions(tmp_path / "pred", data_args)
    bad = tmp_path / "pred" / "tnbc" / "tnbc-01_1.tif"
    tifffile.imwrite(bad, transform(tifffile.imread(bad)))
    result = CliRunner().invoke(cli, ["evaluate", "--predictions", str(tmp_path / "pred"), *data_args,
                                      "--out", str(tmp_path / "rep"), "--split", "tnbc"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert re.search(match, result.output), result.output


def test_missing_prediction_and_usage_errors(tmp_path, data_args):
    (tmp_path / "empty").mkdir()
    missing = CliRunner().invoke(cli, ["evaluate", "--predictions", str(tmp_path / "empty"), *data_args,
                                       "--out", str(tmp_path / "r")])
    assert missing.exit_code == 1 and "no prediction for image TCGA-A7-A13E-01Z-00-DX1" in missing.output
    neither = CliRunner().invoke(cli, ["evaluate", *data_args, "--out", str(tmp_path / "r")])
    assert neither.exit_code == 2 and "exactly one of" in neither.output
    unknown = CliRunner().invoke(cli, ["baseline", "--method", "otsu", *data_args, "--out", str(tmp_path / "r"),
                                       "--split", "nope"])
    assert unknown.exit_code == 2 and "nope not in protocol lagree2021" in unknown.output


def test_long2020_evaluation_reports_long_metrics(tmp_path, synthetic_dsb_download):
    """On the long2020 protocol every row also carries Long 2020's average IOU and precision,
    and summary.md/.json give them as mean +- std."""
    splits = split_protocol("long2020", dsb=synthetic_dsb_download)
    (tmp_path / "pred" / "test").mkdir(parents=True)
    for k, record in enumerate(splits["test"]):
        instances = record.load().instances
        tifffile.imwrite(tmp_path / "pred" / "test" / f"{record.id}.tif", instances if k else np.zeros_like(instances))
    result = invoke(["evaluate", "--predictions", str(tmp_path / "pred"), "--protocol", "long2020",
                     "--dsb", str(synthetic_dsb_download), "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(tmp_path / "rep" / "per_image.csv")))
    assert len(rows) == 3 and {"long_avg_iou", "long_precision", "long_avg_iou_instances"} <= set(rows[0])
    assert [float(r["long_avg_iou"]) for r in rows] == [0.0, 1.0, 1.0]
    long = json.loads((tmp_path / "rep" / "summary.json").read_text())["long2020"]["test"]
    assert long["long_avg_iou_mean"] == pytest.approx(2 / 3) and long["long_avg_iou_std"] == pytest.approx(np.std([0, 1, 1]))
    assert "0.6667 +- 0.4714" in (tmp_path / "rep" / "summary.md").read_text()
