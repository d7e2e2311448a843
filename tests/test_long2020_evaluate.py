"""``experiments/long2020_evaluate.py`` end to end on a synthetic DSB download, with an untrained tiny U-Net."""
import csv
import json
import runpy
import sys

from conftest import REPO
from nuclei_tf.models import build_model


def test_evaluation_reports_the_test_set_and_the_validation_split_it_calibrated_on(synthetic_dsb_download, tmp_path, monkeypatch):
    run = tmp_path / "runs" / "tiny-unet"
    run.mkdir(parents=True)
    spec = {"base_filters": 4, "depth": 2, "classes": 1}
    model = build_model("unet", **spec)
    model.save_weights(run / "best.weights.h5")
    (run / "summary.json").write_text(json.dumps({"arch": "unet", "model": spec, "parameters": model.count_params(),
                                                  "epochs_run": 1, "stopped": None}))
    (run / "history.csv").write_text("epoch,loss,val_loss\n0,1.0,1.0\n")
    out = tmp_path / "results"
    monkeypatch.setattr(sys, "argv", ["long2020_evaluate.py", "--runs", str(run.parent), "--dsb", str(synthetic_dsb_download),
                                      "--out", str(out)])
    runpy.run_path(str(REPO / "experiments" / "long2020_evaluate.py"), run_name="__main__")

    table = json.loads((out / "tables.json").read_text())["tiny-unet"]
    calibration = json.loads((run / "bundle" / "config.json").read_text())["calibration"]
    assert table["min_size"] == calibration["min_size"] and table["n_images"] == 3
    # the validation report reuses the calibration's maps: the same score at the chosen size
    assert abs(table["validation"]["long_avg_iou_mean"] - calibration["table"][str(table["min_size"])]) < 1e-9
    assert {"pixel_precision", "pixel_recall", "pixel_dice", "long_avg_iou_all_t_mean"} <= set(table["validation"])
    assert table["precision"] == "float32"  # the tests resolve auto to float32
    with open(out / "tiny-unet" / "per_image.csv") as handle:
        splits = [row["split"] for row in csv.DictReader(handle)]
    assert splits.count("test") == 3 and splits.count("val") == calibration["images"] == 1
