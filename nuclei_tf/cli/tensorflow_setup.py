"""TensorFlow for the command line: its native start-up lines (oneDNN, CUDA driver probes, the
``E0000 ... cuInit`` error of every CPU run) are written by C++ to file descriptor 2 before any
Python setting applies, so they are sent to a scratch file during the import and the first
device query; the user sees one line instead (which device, which precision). ``nuclei-tf
--verbose`` lets them through.

TensorFlow's import also imports JAX when it is installed (``tensorflow.lite.python.util`` does
``from jax import jit`` for its JAX-to-TFLite converter): 0.9 s and 106 MiB of resident memory
measured here, for a converter no command uses. :func:`jax_hidden` keeps it out under the
TensorFlow backend.
"""
import json
import os
import sys
import tempfile
from contextlib import contextmanager

#: commands that run TensorFlow
TENSORFLOW_COMMANDS = {"calibrate", "demo", "evaluate", "export", "fit", "predict", "upgrade-model"}


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


def keras_backend():
    """The backend Keras will start with: ``KERAS_BACKEND``, else ``keras.json``'s, else tensorflow."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    config = os.path.join(os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras"), "keras.json")
    try:
        with open(config) as handle:
            return json.load(handle).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


@contextmanager
def jax_hidden():
    """Make ``import jax`` fail for the duration (a ``None`` entry in ``sys.modules``), unless JAX
    is imported already or is Keras's backend; a later ``import jax`` works again."""
    if "jax" in sys.modules or keras_backend() == "jax":
        yield
        return
    sys.modules["jax"] = None
    try:
        yield
    finally:
        if sys.modules.get("jax", False) is None:
            del sys.modules["jax"]


def start_tensorflow(verbose=False):
    """Import TensorFlow (quietly unless ``verbose``) and return the line naming its device."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "2")
    if verbose:
        with jax_hidden():
            import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    else:
        with native_stderr_to_scratch(), jax_hidden():
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
    from nuclei_tf.inference.precision import resolve_precision

    device = (f"{len(gpus)} GPU{'s' if len(gpus) > 1 else ''} (fit --precision auto: mixed_float16)" if gpus
              else f"CPU ({os.cpu_count()} cores; training float32, inference {resolve_precision('auto')})")
    return f"TensorFlow {tf.__version__} on {device}"
