"""Atomic checkpoints of a training run: model weights, optimizer state and loop position.

A checkpoint is a folder (``weights.weights.h5``, ``optimizer.npz``, ``state.json``) written
under a temporary name and swapped in with renames, so an interruption at any moment
leaves the previous checkpoint intact.
"""
import json
import shutil
from pathlib import Path

import numpy as np

WEIGHTS, OPTIMIZER, STATE = "weights.weights.h5", "optimizer.npz", "state.json"


def save_checkpoint(folder, model, optimizer, state):
    """Write ``folder`` atomically: model weights, optimizer variables, ``state`` (JSON)."""
    folder = Path(folder)
    tmp, old = folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_weights(tmp / WEIGHTS)
    np.savez(tmp / OPTIMIZER, *[np.asarray(v.numpy()) for v in optimizer.variables])
    (tmp / STATE).write_text(json.dumps(state, indent=2))
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def find_checkpoint(folder):
    """The complete checkpoint folder to resume from (``folder`` or its ``.old`` twin), or None."""
    folder = Path(folder)
    for candidate in (folder, folder.with_name(folder.name + ".old")):
        if (candidate / STATE).is_file():
            return candidate
    return None


def load_checkpoint(folder, model, optimizer):
    """Restore weights and optimizer variables from ``folder``; returns the saved state dict."""
    model.load_weights(Path(folder) / WEIGHTS)
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    with np.load(Path(folder) / OPTIMIZER) as arrays:
        values = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
    if len(values) != len(optimizer.variables):
        raise ValueError(f"{folder}: checkpoint holds {len(values)} optimizer variables, the optimizer has {len(optimizer.variables)}")
    for variable, value in zip(optimizer.variables, values):
        variable.assign(value)
    return json.loads((Path(folder) / STATE).read_text())
