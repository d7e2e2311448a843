"""MultiWorkerMirroredStrategy from TF_CONFIG: two local CPU workers train a few steps and end
with identical weights (gradients are all-reduced, not applied per worker)."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

WORKER = Path(__file__).with_name("distributed_worker.py")


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_end_with_identical_weights(synthetic_folder, tmp_path):
    workers = [f"localhost:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
               "TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})}
        processes.append(subprocess.Popen(
            [sys.executable, str(WORKER), str(synthetic_folder), str(tmp_path / f"run{index}"), str(tmp_path / f"w{index}.npz")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    first, second = (np.load(tmp_path / f"w{i}.npz") for i in range(2))
    assert len(first.files) == len(second.files) > 0
    differing = [key for key in first.files if not np.array_equal(first[key], second[key])]
    assert not differing, f"weights differ between workers: {differing}"
    assert (tmp_path / "run0" / "checkpoints" / "last").is_dir(), "the chief writes the checkpoint"
    assert not (tmp_path / "run1" / "checkpoints" / "last").exists(), "other workers do not"
