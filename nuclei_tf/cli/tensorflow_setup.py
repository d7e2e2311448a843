"""TensorFlow for the command line: its native start-up lines (oneDNN, CUDA driver probes, the
``E0000 ... cuInit`` error of every CPU run) are written by C++ to file descriptor 2 before any
Python setting applies, so they are sent to a scratch file during the import and the first
device query; the user sees one line instead (which device, which precision). ``nuclei-tf
--verbose`` lets them through."""
import os
import sys
import tempfile
from contextlib import contextmanager

#: commands that run TensorFlow
TENSORFLOW_COMMANDS = {"calibrate", "demo", "evaluate", "export", "fit", "predict"}


@contextmanager
def native_stderr_to_scratch():
    """Redirect file descriptor 2 (C++ logging) to a temporary file for the duration."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as scratch:
        os.dup2(scratch.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def start_tensorflow(verbose=False):
    """Import TensorFlow (quietly unless ``verbose``) and return the line naming its device."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "2")
    if verbose:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    else:
        with native_stderr_to_scratch():
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
    from nuclei_tf.inference.precision import resolve_precision

    device = (f"{len(gpus)} GPU{'s' if len(gpus) > 1 else ''} (fit --precision auto: mixed_float16)" if gpus
              else f"CPU ({os.cpu_count()} cores; training float32, inference {resolve_precision('auto')})")
    return f"TensorFlow {tf.__version__} on {device}"
