"""Experiment configuration: defaults <- experiment YAML <- command-line overrides.

An experiment YAML (see ``experiments/``) has the sections::

    protocol: lagree2021          # split protocol (nuclei_tf.data.protocols)
    arch: unet_plus               # nuclei_tf.models.build_model arch
    model: {...}                  # build_model options (classes decides sigmoid/softmax targets)
    data: {...}                   # nuclei_tf.data.pipeline.PipelineConfig fields
    preprocess: {stain: none|macenko}
    train: {...}                  # nuclei_tf.train.trainer.TrainConfig fields
    members: [...]                # gbunet, ensemble: member specs (nuclei_tf.train.members);
                                  # default: Lagree's ImageNet-pretrained VGG-19/ResNet-101/DenseNet-121 U-Nets
    precision: auto
    seed: 0
"""
import copy
from pathlib import Path

import yaml

from nuclei_tf.data.pipeline import PipelineConfig
from nuclei_tf.models.members import LAGREE_PRETRAINED_MEMBERS
from nuclei_tf.models.registry import get_spec
from nuclei_tf.train.settings import TrainConfig

DEFAULTS = {
    "protocol": "lagree2021",
    "arch": "unet_plus",
    "model": {},
    "data": {},
    "preprocess": {"stain": "none"},
    "train": {},
    "members": None,
    "precision": "auto",
    "seed": 0,
}

SECTIONS = set(DEFAULTS)


def merge(base, override):
    """Recursive dict merge; ``override`` wins, ``None`` values in it are ignored."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(path=None, overrides=None):
    """The resolved config dict; unknown top-level keys are an error naming the file."""
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not a valid YAML file ({exc})") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: an experiment YAML is a mapping of sections ({', '.join(sorted(SECTIONS))}); "
                             f"got {type(loaded).__name__}")
        unknown = sorted(set(loaded) - SECTIONS)
        if unknown:
            raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(SECTIONS))}")
        config = merge(config, loaded)
    config = merge(config, overrides)
    seed = config["seed"]
    spec = get_spec(config["arch"])
    unknown = sorted(set(config["model"]) - set(spec.options))
    if unknown:
        raise ValueError(f"{path or 'config'}: unknown model option(s) {', '.join(unknown)} for arch {config['arch']!r}; "
                         f"valid: {', '.join(o for o in spec.options if o != 'members')}")
    if config["members"] is None and "members" in spec.options:
        config["members"] = [dict(member) for member in LAGREE_PRETRAINED_MEMBERS]
    try:
        config["data"] = PipelineConfig.from_dict(
            {**config["data"], "classes": config["model"].get("classes", spec.options.get("classes", 1)), "seed": seed}
        ).to_dict()
        config["train"] = TrainConfig(**{**config["train"], "seed": seed}).to_dict()
    except TypeError as exc:  # an unknown field in the data or train section
        raise ValueError(f"{path or 'config'}: {exc}") from None
    return config
