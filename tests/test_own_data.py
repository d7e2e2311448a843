"""Training and fine-tuning on your own annotations: `fit --data ROOT`, `--from MODEL`, the
checks of every image / label pair before training, and the folder protocol's splits."""
import json

import numpy as np
import pytest
import tifffile
import yaml
from click.testing import CliRunner
from PIL import Image

from nuclei_tf.cli.main import cli
from nuclei_tf.data import split_protocol
from nuclei_tf.inference import load_bundle

from conftest import disk_instances

TINY = {"arch": "unet_plus", "model": {"base_filters": 4, "depth": 3}, "data": {"tile": 32, "batch_size": 2},
        "train": {"epochs": 1, "steps_per_epoch": 1}}


def write_own_folder(root, n=5, size=48, mpp=0.25):
    """``n`` images of dark disks on pink with their instance maps, and dataset.json."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        centres = [tuple(rng.integers(8, size - 8, 2)) for _ in range(3)]
        labels = disk_instances((size, size), centres, 5)
        image = np.where(labels[..., None] > 0, np.array([70, 40, 130], np.uint8), np.array([240, 170, 210], np.uint8))
        Image.fromarray(image.astype(np.uint8)).save(root / "images" / f"img{i}.png")
        tifffile.imwrite(root / "labels" / f"img{i}.tif", labels.astype(np.uint16))
    if mpp is not None:
        (root / "dataset.json").write_text(json.dumps({"mpp": mpp}))
    return root


def invoke(args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_the_folder_protocol_splits_by_fraction_or_by_val_and_test_folders(tmp_path):
    root = write_own_folder(tmp_path / "own", n=5)
    splits = split_protocol("folder", data=root, seed=0)
    assert (len(splits["train"]), len(splits["val"])) == (4, 1) and "test" not in splits
    assert not {r.id for r in splits["train"]} & {r.id for r in splits["val"]}
    write_own_folder(root / "val", n=2, mpp=None)
    write_own_folder(root / "test", n=3, mpp=None)
    splits = split_protocol("folder", data=root, seed=0)
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (5, 2, 3)
    (root / "dataset.json").write_text(json.dumps({"mpp": 0.25, "val_fration": 0.3}))
    with pytest.raises(ValueError, match="dataset.json: must be an object with keys among labels, val_fraction, mpp"):
        split_protocol("folder", data=root)


@pytest.mark.parametrize("damage, message", [
    (lambda root: (root / "labels" / "img2.tif").unlink(), "img2.png: no label image named 'img2.*'"),
    (lambda root: tifffile.imwrite(root / "labels" / "img1.tif", np.zeros((40, 48), np.uint16)),
     "img1.tif: is 48 x 40 px but its image img1.png is 48 x 48 px"),
    (lambda root: tifffile.imwrite(root / "labels" / "img3.tif", np.full((48, 48), 0.5, np.float32)),
     "img3.tif: label map holds non-integer ids (0.5 at x=0, y=0)"),
    (lambda root: tifffile.imwrite(root / "labels" / "img0.tif", (tifffile.imread(root / "labels" / "img0.tif") > 0) * 255),
     "img0.tif: holds one id for several separate nuclei (a binary mask?)"),
])
def test_a_bad_pair_stops_fit_before_training_naming_the_file(tmp_path, damage, message):
    root = write_own_folder(tmp_path / "own")
    damage(root)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    result = CliRunner().invoke(cli, ["fit", "--data", str(root), "--config", str(tmp_path / "tiny.yaml"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output, result.output
    assert not (tmp_path / "run" / "checkpoints").exists() and not (tmp_path / "run" / "history.csv").exists()


def test_binary_masks_become_their_connected_components_when_stated(tmp_path):
    from scipy import ndimage

    root = write_own_folder(tmp_path / "own")
    truth = {}
    for path in sorted((root / "labels").iterdir()):
        truth[path.stem] = tifffile.imread(path)
        tifffile.imwrite(path, ((truth[path.stem] > 0) * 255).astype(np.uint8))
    refused = CliRunner().invoke(cli, ["data", "summary", "--data", str(root)])
    assert refused.exit_code == 1 and "a binary mask?" in refused.output and "--labels binary" in refused.output
    (root / "dataset.json").write_text(json.dumps({"mpp": 0.25, "labels": "binary"}))
    summary = CliRunner().invoke(cli, ["data", "summary", "--data", str(root), "--json"])
    assert summary.exit_code == 0, summary.output
    splits = split_protocol("folder", data=root, seed=0)
    for record in splits["train"] + splits["val"]:
        instances = record.load().instances
        assert instances.max() == ndimage.label(truth[record.id] > 0)[1]  # one nucleus per 4-connected component
        np.testing.assert_array_equal(instances > 0, truth[record.id] > 0)


def test_fit_on_your_own_folder_then_calibrate_and_predict_like_any_model(tmp_path):
    root = write_own_folder(tmp_path / "own")
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    result = invoke(["fit", "--data", root, "--config", tmp_path / "tiny.yaml", "--val-fraction", 0.4, "--out", tmp_path / "run"])
    assert result.exit_code == 0, result.output
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert config["protocol"] == "folder" and config["dataset"] == {"root": str(root), "labels": "instances",
                                                                    "val_fraction": 0.4, "mpp": 0.25}
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["images"] == {"train": 3, "val": 2}
    calibrated = invoke(["calibrate", tmp_path / "run" / "best.keras", "--out", tmp_path / "mine"])  # the run's own split
    assert calibrated.exit_code == 0 and "on 2 images" in calibrated.output, calibrated.output
    bundle = load_bundle(tmp_path / "mine")
    assert bundle.mpp == 0.25 and bundle.info["protocol"] == "folder" and bundle.info["calibration"]["images"] == 2
    predicted = invoke(["predict", root / "images" / "img0.png", "--model", tmp_path / "mine", "--out", tmp_path / "out"])
    assert predicted.exit_code == 0 and (tmp_path / "out" / "img0.labels.tif").is_file(), predicted.output
    refused = CliRunner().invoke(cli, ["fit", "--val-fraction", "0.3", "--out", str(tmp_path / "x")])
    assert refused.exit_code == 2 and "describe --data ROOT" in refused.output
    refused = CliRunner().invoke(cli, ["fit", "--data", str(root), "--protocol", "lagree2021", "--out", str(tmp_path / "x")])
    assert refused.exit_code == 2 and "not --protocol lagree2021" in refused.output


def test_fine_tuning_starts_from_the_model_folder_with_its_recipe(tmp_path):
    root = write_own_folder(tmp_path / "own")
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "preprocess": {"stain": "macenko"}}))
    assert invoke(["fit", "--data", root, "--config", tmp_path / "tiny.yaml", "--out", tmp_path / "first"]).exit_code == 0
    assert invoke(["calibrate", tmp_path / "first" / "best.keras", "--out", tmp_path / "base"]).exit_code == 0
    other = write_own_folder(tmp_path / "other", mpp=0.5)
    refused = CliRunner().invoke(cli, ["fit", "--data", str(other), "--from", str(tmp_path / "base"), "--out", str(tmp_path / "x")])
    assert refused.exit_code == 2 and "are at 0.5 um/px" in refused.output and "at 0.25 um/px" in refused.output
    refused = CliRunner().invoke(cli, ["fit", "--data", str(root), "--from", str(tmp_path / "base"), "--arch", "unet",
                                       "--out", str(tmp_path / "x")])
    assert refused.exit_code == 2 and "drop --arch" in refused.output
    tuned = invoke(["fit", "--data", root, "--from", tmp_path / "base", "--epochs", 1, "--steps-per-epoch", 1,
                    "--learning-rate", 1e-5, "--out", tmp_path / "tuned"])
    assert tuned.exit_code == 0, tuned.output
    config = yaml.safe_load((tmp_path / "tuned" / "config.yaml").read_text())
    assert config["start_from"] == str(tmp_path / "base") and config["preprocess"]["stain"] == "macenko"
    assert config["model"]["base_filters"] == 4 and config["train"]["learning_rate"] == 1e-5
    from nuclei_tf.models import load_model

    base, started = load_model(tmp_path / "base" / "model.keras"), load_model(tmp_path / "tuned" / "best.keras")
    moved = [np.abs(np.asarray(a) - np.asarray(b)).max() for a, b in zip(base.trainable_weights, started.trainable_weights)]
    assert 0 < max(moved) < 2e-5  # one Adam step at 1e-5 from the folder's weights, not a new initialisation
    assert invoke(["calibrate", tmp_path / "tuned" / "best.keras", "--out", tmp_path / "tuned_folder"]).exit_code == 0
    tuned, started = load_bundle(tmp_path / "tuned_folder"), load_bundle(tmp_path / "base")
    assert tuned.stain == "macenko" and started.stain_max_gain is not None
    assert tuned.stain_max_gain == started.stain_max_gain  # the starting folder's caps, not 5 images' own
    assert tuned.info["calibration"]["stain_max_gain"] == {"from": str(tmp_path / "base")}
