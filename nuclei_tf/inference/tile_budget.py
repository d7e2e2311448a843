"""The margin scheme's tile size from a memory budget.

Each margin window costs the model's activation memory for its pixels (one window per model
call once tiles exceed 724 px: ``PIXELS_PER_TILE`` x 8), and larger windows discard less:
the model computes about ``(tile / (tile - 2 margin))^2`` pixels per image pixel on a large
image (512 px tiles with 64 px margins: 1.74; 1216 px: 1.24). :func:`activation_bytes_per_pixel`
measures it in a fresh process (the peak bytes TensorFlow's CPU allocator holds during one call
on a :data:`PROBE` px tile, over what it held before, at the precision it will run at; exact
and repeatable, where the resident size varied with what the allocator had kept);
:func:`margin_tile` is the largest tile, a multiple of the model's input multiple, that fits
``budget`` MiB (``calibrate --tile-memory``, default 512: the 40,000 px slide run stays under
2 GB). Measured on the shipped U-Net+: 294 B/px at bfloat16, 359 B/px at float32 (1344 and
1216 px tiles under 512 MiB).
"""
import json
import os
import subprocess
import sys

#: the tile side the measurement runs (px), and how many times
PROBE = 1024
REPEATS = 4


def activation_bytes_per_pixel(model_file, precision, probe=PROBE):
    """Peak activation bytes per input pixel of ``model_file`` at ``precision`` on a ``probe`` px
    tile, measured in a child process whose TensorFlow CPU allocator counts what it holds (BFC allocator)."""
    env = {**os.environ, "TF_CPU_ALLOCATOR_USE_BFC": "true"}
    result = subprocess.run([sys.executable, "-m", "nuclei_tf.inference.tile_budget", str(model_file), precision, str(probe)],
                            capture_output=True, text=True, env=env)
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{model_file}: measuring the model's activation memory failed ({tail[0]})")
    return json.loads(result.stdout.strip().splitlines()[-1])["bytes_per_pixel"]


def margin_tile(bytes_per_pixel, margin, multiple, budget_mib):
    """The largest tile (px, a multiple of ``multiple``) whose activations fit ``budget_mib``;
    refused when even ``2 margin + multiple`` does not."""
    side = int((budget_mib * 2**20 / bytes_per_pixel) ** 0.5) // multiple * multiple
    if side <= 2 * margin:
        raise ValueError(f"a {budget_mib} MiB budget allows {side} px tiles at {bytes_per_pixel:.0f} B/px, not more "
                         f"than twice the {margin} px margin: raise the budget")
    return side


def _measure(model_file, precision, probe):
    import numpy as np
    import tensorflow as tf

    from nuclei_tf.inference.bundle import ModelBundle
    from nuclei_tf.inference.precision import load_at_precision

    bundle = ModelBundle(load_at_precision(model_file, precision), precision=precision)
    bundle.probabilities(np.zeros((1, 64, 64, 3), np.uint8))  # the graph traced, the weights placed
    grown = []
    for _ in range(REPEATS):  # the executor's thread schedule moves the peak live set by up to 20%: keep the largest
        tf.config.experimental.reset_memory_stats("CPU:0")
        held = tf.config.experimental.get_memory_info("CPU:0")["current"]
        bundle.probabilities(np.zeros((1, probe, probe, 3), np.uint8))
        grown.append(tf.config.experimental.get_memory_info("CPU:0")["peak"] - held)
    if max(grown) <= 0:
        raise RuntimeError("TensorFlow's CPU allocator counted no memory (TF_CPU_ALLOCATOR_USE_BFC not applied?)")
    return {"bytes_per_pixel": max(grown) / probe**2, "precision": precision}


if __name__ == "__main__":
    print(json.dumps(_measure(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
