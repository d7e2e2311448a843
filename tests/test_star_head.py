"""The rays head (StarDist, Schmidt et al. 2018): ray-distance and object-probability targets, loss,
polygon suppression (whole image and strip by strip), training, calibration and prediction."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from scipy import ndimage

from nuclei_tf.data.star_targets import N_RAYS, RAY_CHANNELS, object_probabilities, ray_angles, star_distances, star_targets
from nuclei_tf.postprocess.star_polygons import MAX_RAY

from test_hv_head import DIHEDRAL, random_nuclei
from test_strips import assert_same_nuclei, blocks_of


def slow_star_distances(instances, n_rays=N_RAYS):
    """Pixel by pixel and ray by ray, in plain Python."""
    height, width = instances.shape
    out = np.zeros((height, width, n_rays))
    for row, col in zip(*np.nonzero(instances)):
        for k, angle in enumerate(2 * math.pi * np.arange(n_rays) / n_rays):
            step = 1
            while True:
                y = math.floor(row + step * math.sin(angle) + 0.5)
                x = math.floor(col + step * math.cos(angle) + 0.5)
                if not (0 <= y < height and 0 <= x < width) or instances[y, x] != instances[row, col]:
                    out[row, col, k] = step - 0.5
                    break
                step += 1
    return out


def test_ray_distances_by_hand():
    instances = np.zeros((5, 9), np.int32)
    instances[2, 1:8] = 3  # a bar of 7 px
    distances = star_distances(instances)
    assert distances.shape == (5, 9, 32) and distances.dtype == np.float32
    right, down, left = 0, N_RAYS // 4, N_RAYS // 2  # 0, 90 and 180 degrees (rows grow downwards)
    np.testing.assert_array_equal(distances[2, 1:8, right], [6.5, 5.5, 4.5, 3.5, 2.5, 1.5, 0.5])
    np.testing.assert_array_equal(distances[2, 1:8, left], [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5])
    np.testing.assert_array_equal(distances[2, 1:8, down], 0.5)
    assert not distances[instances == 0].any()
    edge = np.zeros((3, 3), np.int32)
    edge[:, 2] = 1  # the image's edge ends a ray as another label does
    assert star_distances(edge)[1, 2, right] == 0.5


@pytest.mark.parametrize("seed", [0, 1])
def test_ray_distances_equal_the_slow_implementation(seed):
    instances = random_nuclei((40, 50), seed, count=12)
    instances[instances == 5] = 700  # ids need not be contiguous
    np.testing.assert_allclose(star_distances(instances), slow_star_distances(instances), atol=1e-6)


def test_a_disc_has_its_radius_on_every_ray_from_the_centre():
    yy, xx = np.mgrid[:61, :61]
    instances = ((yy - 30) ** 2 + (xx - 30) ** 2 <= 20**2).astype(np.int32)
    distances = star_distances(instances)[30, 30]
    assert np.all(np.abs(distances - 20) <= 1.0), distances
    assert np.allclose(ray_angles()[[0, 8, 16, 24]], [0, np.pi / 2, np.pi, 3 * np.pi / 2])


#: where ray k goes under each move of DIHEDRAL (angles from +x towards +y, rows down)
RAY_MOVES = {
    "flip left-right": lambda k: (N_RAYS // 2 - k) % N_RAYS,
    "flip up-down": lambda k: (-k) % N_RAYS,
    "turn 90": lambda k: (k - N_RAYS // 4) % N_RAYS,
    "turn 180": lambda k: (k + N_RAYS // 2) % N_RAYS,
    "turn 270": lambda k: (k + N_RAYS // 4) % N_RAYS,
    "transpose": lambda k: (N_RAYS // 4 - k) % N_RAYS,
}


@pytest.mark.parametrize("name, move", [(name, move) for name, move, _ in DIHEDRAL], ids=[d[0] for d in DIHEDRAL])
def test_flips_and_rotations_permute_the_rays(name, move):
    instances = random_nuclei((56, 64), 3)
    moved = star_distances(np.ascontiguousarray(move(instances)))
    before = move(star_distances(instances))
    for k in range(N_RAYS):
        np.testing.assert_allclose(moved[..., RAY_MOVES[name](k)], before[..., k], atol=1e-5, err_msg=f"ray {k}")


@pytest.mark.parametrize("turns", range(4))
@pytest.mark.parametrize("flip", [False, True])
def test_view_channels_put_a_test_time_view_back(turns, flip):
    """Targets of a turned and flipped view, turned and flipped back as TTA does, then renumbered,
    are the image's own."""
    from nuclei_tf.data.star_targets import view_channels

    instances = random_nuclei((48, 48), 6, count=12)
    view = np.rot90(instances, turns)
    view = np.ascontiguousarray(view[:, ::-1] if flip else view)
    back = star_targets(view)
    back = np.rot90(back[:, ::-1] if flip else back, -turns)[..., view_channels(turns, flip)]
    np.testing.assert_allclose(back, star_targets(instances), atol=1e-5)


def test_object_probability_is_the_distance_to_the_edge_over_its_largest():
    instances = np.zeros((7, 12), np.int32)
    instances[1:6, 1:6] = 1  # a 5 x 5 square: distances 1, 2, 3 from the edge inwards
    instances[1:6, 6:11] = 2  # touching it: the edge between them counts as outside for both
    probability = object_probabilities(instances)
    np.testing.assert_allclose(probability[3, 1:6], [1 / 3, 2 / 3, 1, 2 / 3, 1 / 3], rtol=1e-6)
    np.testing.assert_allclose(probability[3, 6:11], [1 / 3, 2 / 3, 1, 2 / 3, 1 / 3], rtol=1e-6)
    assert not probability[instances == 0].any()
    corner = np.zeros((4, 4), np.int32)
    corner[:2, :2] = 1  # at the image's corner: the edge counts as outside
    np.testing.assert_allclose(object_probabilities(corner)[:2, :2], 1.0)
    targets = star_targets(instances)
    assert targets.shape == (7, 12, RAY_CHANNELS) and targets.dtype == np.float32
    np.testing.assert_array_equal(targets[..., -1], probability)


def test_augmented_training_targets_reach_each_nucleus_edge():
    """Targets are built after augmentation: from each nucleus's centre in an augmented tile, every
    ray's distance ends where the (augmented) nucleus ends."""
    from nuclei_tf.data.pipeline import PipelineConfig, Prepared, TrainingPipeline

    yy, xx = np.mgrid[:96, :96]
    instances = np.zeros((96, 96), np.int32)
    for label, (cy, cx) in enumerate(((y, x) for y in (14, 46, 78) for x in (14, 46, 78)), start=1):
        instances[((yy - cy) / 11) ** 2 + ((xx - cx) / 8) ** 2 <= 1] = label
    image = np.where(instances[..., None] > 0, 60, 220).astype(np.uint8).repeat(3, axis=-1)
    augment = {"flip_h": {"p": 0.5}, "rotate90": {"p": 0.5},
               "affine": {"p": 1.0, "translate_percent": [-0.05, 0.05], "scale": [0.9, 1.1], "rotate": [-45, 45], "shear": [0, 0]}}
    config = PipelineConfig(tile=64, classes=RAY_CHANNELS, augment=augment, weight_maps=False, batch_size=1)
    pipeline = TrainingPipeline([Prepared("a", image, instances, None)], config)
    checked = 0
    for position in range(6):
        _, target, _ = pipeline.example(0, position, pipeline.items(0)[0])
        assert target.shape == (64, 64, RAY_CHANNELS)
        inside = target[..., -1] > 0
        assert not target[~inside].any()
        labels, count = ndimage.label(inside)
        for label in range(1, count + 1):
            region = labels == label
            if region.sum() < 60 or region[[0, -1]].any() or region[:, [0, -1]].any():
                continue
            row, col = np.unravel_index(np.argmax(np.where(region, target[..., -1], -1)), region.shape)
            for k, angle in enumerate(ray_angles()):
                for along, expected in ((target[row, col, k] - 0.5, True), (target[row, col, k] + 0.5, False)):
                    y, x = (math.floor(row + along * math.sin(angle) + 0.5), math.floor(col + along * math.cos(angle) + 0.5))
                    assert region[y, x] == expected, (position, label, k)
            checked += 1
    assert checked >= 6


def test_stardist_loss_by_hand():
    from nuclei_tf.train.losses import stardist_loss

    instances = random_nuclei((32, 32), 5, count=4)
    truth = star_targets(instances)[None]
    p = np.clip(truth[..., -1], 1e-7, 1 - 1e-7)
    entropy = float(np.mean(-(truth[..., -1] * np.log(p) + (1 - truth[..., -1]) * np.log(1 - p))))
    np.testing.assert_allclose(float(stardist_loss(truth, truth)), entropy, rtol=1e-4)
    off = truth.copy()
    off[..., :N_RAYS] += 2.0  # every ray 2 px too long, on nuclei and background alike
    np.testing.assert_allclose(float(stardist_loss(truth, off)), entropy + 0.2 * 2.0 + 1e-4 * 2.0, rtol=1e-4)
    with pytest.raises(ValueError, match="rays head's 33 channels"):
        stardist_loss(truth[..., :4], truth[..., :4])


def noisy_outputs(shape, seed, count=30):
    """Rays outputs of a model that is nearly right: the ideal targets of random touching nuclei with
    rays 20% off at random and a noisy object probability, so many candidates overlap."""
    rng = np.random.default_rng(seed)
    outputs = star_targets(random_nuclei(shape, seed, count=count)).astype(np.float64)
    outputs[..., :N_RAYS] *= rng.uniform(0.8, 1.2, outputs.shape[:2] + (N_RAYS,))
    outputs[..., -1] = np.clip(outputs[..., -1] + rng.normal(0, 0.1, shape), 0, 1)
    return outputs.astype(np.float16)


def slow_polygon_instances(outputs, threshold, nms_threshold, min_size):
    """StarDist's post-processing spelt out: every polygon as a set of pixel centres (even-odd
    crossing test per pixel), greedy suppression by intersection over the smaller area, the most
    probable covering polygon owns a pixel, small nuclei dropped."""
    height, width = outputs.shape[:2]
    ys, xs = np.nonzero(outputs[..., -1] > threshold)
    probability = outputs[ys, xs, -1].astype(np.float32)
    order = sorted(range(len(ys)), key=lambda i: (-probability[i], ys[i], xs[i]))
    angles = ray_angles()

    def pixels(i):
        d = np.clip(outputs[ys[i], xs[i], :N_RAYS].astype(np.float64), 0, MAX_RAY)
        vy, vx = ys[i] + d * np.sin(angles), xs[i] + d * np.cos(angles)
        reach = d.max()
        inside = set()
        for py in range(max(0, math.floor(ys[i] - reach)), min(height - 1, math.ceil(ys[i] + reach)) + 1):
            for px in range(max(0, math.floor(xs[i] - reach)), min(width - 1, math.ceil(xs[i] + reach)) + 1):
                crossings = 0
                for k in range(N_RAYS):
                    j = (k + 1) % N_RAYS
                    if (vy[k] <= py < vy[j]) or (vy[j] <= py < vy[k]):
                        crossings += px < vx[k] + (py - vy[k]) / (vy[j] - vy[k]) * (vx[j] - vx[k])
                inside |= {(py, px)} if crossings % 2 else set()
        return inside

    kept = []
    for i in order:
        polygon = pixels(i)
        if polygon and not any(len(polygon & other) > nms_threshold * min(len(polygon), len(other)) for _, other in kept):
            kept.append((i, polygon))
    labels = np.zeros((height, width), np.int32)
    for label, (_, polygon) in reversed(list(enumerate(kept, start=1))):  # the most probable painted last
        for py, px in polygon:
            labels[py, px] = label
    sizes = np.bincount(labels.ravel(), minlength=len(kept) + 1)
    labels[sizes[labels] < min_size] = 0
    return labels


def polygon_settings(**changes):
    from nuclei_tf.postprocess import PostProcess

    return PostProcess(**{"split": "polygons", "threshold": 0.5, "nms_threshold": 0.4, "min_size": 10, **changes})


@pytest.mark.parametrize("seed, changes", [(0, {}), (1, {"nms_threshold": 0.2, "threshold": 0.6}), (2, {"min_size": 40})])
def test_polygon_nms_equals_the_slow_implementation(seed, changes):
    from nuclei_tf.postprocess import probability_to_instances

    outputs = noisy_outputs((40, 48), seed, count=8)
    settings = polygon_settings(**changes)
    fast = probability_to_instances(outputs, settings)
    assert fast.dtype == np.int32 and fast.max() >= 3
    assert_same_nuclei(fast, slow_polygon_instances(outputs, settings.threshold, settings.nms_threshold, settings.min_size))


def test_ideal_outputs_give_back_the_nuclei():
    from nuclei_tf.metrics import evaluate_instances
    from nuclei_tf.postprocess import probability_to_instances

    instances = random_nuclei((200, 180), 4, count=40)
    found = probability_to_instances(star_targets(instances).astype(np.float16), polygon_settings(min_size=5))
    scores = evaluate_instances(instances, found)
    assert scores["aji"] > 0.9 and scores["f1@0.5"] > 0.97, scores


def by_polygon_strips(outputs, settings, strip_rows, sizes):
    from nuclei_tf.postprocess.star_polygons import polygon_strips

    instances = np.zeros(outputs.shape[:2], np.int32)
    final = 0
    for strip in polygon_strips(blocks_of(outputs, sizes), len(outputs), outputs.shape[1], settings, strip_rows):
        assert strip.final >= final and not instances[strip.top : strip.top + len(strip.labels)][strip.labels > 0].any()
        final = strip.final
        strip.paste(instances)
    assert final == len(outputs)
    return instances


@pytest.mark.parametrize("strip_rows, sizes", [(16, (7,)), (50, (37, 11)), (90, (64,)), (400, (37,))])
def test_polygon_strips_equal_the_whole_image(strip_rows, sizes):
    """Windows shorter than a polygon's reach, and long ones: the same nuclei as the whole map."""
    from nuclei_tf.postprocess.star_polygons import polygon_instances

    outputs = noisy_outputs((260, 90), 5, count=70)
    settings = polygon_settings()
    whole = polygon_instances(outputs, settings)
    assert whole.max() > 30
    assert_same_nuclei(by_polygon_strips(outputs, settings, strip_rows, sizes), whole)


def test_polygon_settings_and_odd_outputs():
    from nuclei_tf.postprocess import PostProcess, probability_to_instances

    with pytest.raises(ValueError, match="nms_threshold must lie in"):
        PostProcess(split="polygons", nms_threshold=1.5)
    with pytest.raises(ValueError, match="x 33"):
        probability_to_instances(np.zeros((8, 8, 4), np.float32), polygon_settings())
    with pytest.raises(ValueError, match="NaN or Inf"):
        probability_to_instances(np.full((8, 8, 33), np.nan, np.float32), polygon_settings())
    assert not probability_to_instances(np.zeros((8, 8, 33), np.float32), polygon_settings()).any()
    long_rays = np.zeros((9, 9, 33), np.float32)
    long_rays[4, 4] = 500.0  # clipped to MAX_RAY, then to the image
    assert (probability_to_instances(long_rays, polygon_settings(min_size=1)) == 1).all()


def test_fit_calibrate_and_predict_a_rays_unet_plus(synthetic_monuseg, synthetic_tnbc, tmp_path):
    """The star-convex experiment, shrunk to 2 steps: finite losses, `calibrate` on the rays grid
    (object-probability threshold x suppression overlap), a format-5 folder stating nms_threshold,
    an image segmented, with and without test-time augmentation."""
    from dataclasses import replace

    from nuclei_tf.cli.main import cli
    from nuclei_tf.inference import load_bundle, segment
    from nuclei_tf.train.config import load_config

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "experiments" / "lagree2021-unet-plus-rays-hed-ema.yaml").read_text())
    config["model"].update(base_filters=4, depth=3)
    config["data"].update(tile=32, batch_size=2)
    config["train"].update(epochs=1, steps_per_epoch=2)
    (tmp_path / "rays.yaml").write_text(yaml.safe_dump(config))
    assert load_config(tmp_path / "rays.yaml")["data"]["classes"] == RAY_CHANNELS
    data = ["--monuseg", str(synthetic_monuseg), "--tnbc", str(synthetic_tnbc), "--protocol", "kasturi2022"]
    result = CliRunner().invoke(cli, ["fit", "--config", str(tmp_path / "rays.yaml"), *data, "--out", str(tmp_path / "run")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    history = json.loads((tmp_path / "run" / "summary.json").read_text())["history"]
    assert all(np.isfinite([h["loss"], h["val_loss"]]).all() for h in history)
    calibrated = CliRunner().invoke(cli, ["calibrate", str(tmp_path / "run" / "best.keras"), *data, "--out", str(tmp_path / "folder")],
                                    catch_exceptions=False)
    assert calibrated.exit_code == 0, calibrated.output
    bundle = load_bundle(tmp_path / "folder")
    table = bundle.info["calibration"]["table"]
    assert bundle.postprocess.split == "polygons" and len(table) == 12 and "polygons@0.5~nms0.4" in table
    assert f"split polygons (suppressed beyond {bundle.postprocess.nms_threshold} overlap)" in bundle.postprocess_summary()
    written = json.loads((tmp_path / "folder" / "config.json").read_text())
    assert written["format"] == 5 and written["postprocess"]["nms_threshold"] in (0.3, 0.4, 0.5)
    image = np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    outputs, instances = segment(bundle, image)
    assert outputs.shape == (48, 40, RAY_CHANNELS) and instances.shape == (48, 40) and instances.dtype == np.int32
    with_tta, _ = segment(replace(bundle, tta=True), image)
    assert with_tta.shape == (48, 40, RAY_CHANNELS)
