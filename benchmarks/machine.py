"""One line naming the machine a benchmark ran on (CPU model, cores, library versions)."""
import os
import platform


def describe():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu} | {os.cpu_count()} cores | {platform.system()} {platform.release()} | python {platform.python_version()}"
