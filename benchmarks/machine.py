"""Naming the machine a benchmark ran on (shared by every benchmark script)."""
import os
import platform
from pathlib import Path


def cpu_model():
    """The CPU model named in /proc/cpuinfo, or the platform's processor name elsewhere."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.machine())


def describe(threads=None):
    """One line: architecture, CPU model, core count (and threads used, when limited)."""
    used = f" ({threads} thread{'s' if threads != 1 else ''} used)" if threads else ""
    return f"machine: {platform.machine()} | {cpu_model()} | {os.cpu_count()} cores{used} | python {platform.python_version()}"
