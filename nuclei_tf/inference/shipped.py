"""The model folders shipped in the package (``nuclei_tf.weights``: the source tree's
``weights/``, installed with the package, wheels included) and how a ``--model`` value names a
folder; no TensorFlow here, so a command can check a model name before loading anything."""
from importlib import resources
from pathlib import Path

#: the name of the default model folder
DEFAULT_MODEL_NAME = "unet_plus_b16"


def default_model_path():
    """The folder of the model shipped in weights/ (``nuclei_tf.weights`` once installed)."""
    folder = Path(str(resources.files("nuclei_tf.weights") / DEFAULT_MODEL_NAME))
    if not (folder / "model.keras").is_file():
        raise FileNotFoundError(f"no shipped model found in {folder}; reinstall nuclei-tf or pass --model PATH")
    return folder


def shipped_models():
    """Names of the model folders shipped in ``nuclei_tf.weights``."""
    root = Path(str(resources.files("nuclei_tf.weights")))
    return sorted(p.name for p in root.iterdir() if (p / "model.keras").is_file())


def resolve_model(path):
    """A model path as given, or the shipped model folder of that name (``--model unet_plus_b16``)."""
    if path is None:
        return default_model_path()
    path = Path(path)
    if path.exists():
        return path
    if str(path) in shipped_models():
        return Path(str(resources.files("nuclei_tf.weights") / str(path)))
    raise FileNotFoundError(f"{path}: no such model folder or .keras file, and not a shipped model "
                            f"({', '.join(shipped_models())})")
