"""The examples run end to end: one training step on tiny synthetic data (the real runs are in README)."""
import importlib.util
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from conftest import disk_instances
from nuclei_tf.cli.main import cli

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_fine_tuning_example_runs_one_step_on_synthetic_tnbc(tmp_path):
    root = tmp_path / "TNBC"
    rng = np.random.default_rng(0)
    for patient in ("01", "02", "03", "04", "05"):
        (root / f"Slide_{patient}").mkdir(parents=True)
        (root / f"GT_{patient}").mkdir()
        labels = disk_instances((256, 256), [tuple(rng.integers(20, 236, 2)) for _ in range(12)], 7)
        image = np.where(labels[..., None] > 0, np.array([90, 50, 140]), np.array([235, 175, 210])).astype(np.uint8)
        Image.fromarray(image).save(root / f"Slide_{patient}" / f"{patient}_1.png")
        Image.fromarray(((labels > 0) * 255).astype(np.uint8)).save(root / f"GT_{patient}" / f"{patient}_1.png")
    spec = importlib.util.spec_from_file_location("fine_tune_tnbc", EXAMPLES / "fine_tune_tnbc.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    def in_process(*args):  # the same commands, without a TensorFlow start-up each
        result = CliRunner().invoke(cli, [*map(str, args)])
        assert result.exit_code == 0, result.output

    example.main(["--tnbc", str(root), "--out", str(tmp_path / "out"), "--epochs", "1", "--steps-per-epoch", "1",
                  "--tiling", "blend"], run=in_process)
    comparison = (tmp_path / "out" / "comparison.md").read_text()
    assert "| shipped |" in comparison and "| tuned |" in comparison and "Test: 1 images" in comparison
    assert (tmp_path / "out" / "model" / "config.json").is_file()
