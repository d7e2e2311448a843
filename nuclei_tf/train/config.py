"""Experiment configuration: defaults <- experiment YAML <- command-line overrides.

An experiment YAML (see ``experiments/``) has the sections::

    protocol: lagree2021          # split protocol (nuclei_tf.data.protocols)
    arch: unet_plus               # nuclei_tf.models.build_model arch
    model: {...}                  # build_model options (classes and head decide the targets:
                                  # head: three_class needs train.loss: three_class, head: hv
                                  # train.loss: hover, head: rays train.loss: stardist, and back)
    data: {...}                   # nuclei_tf.data.pipeline.PipelineConfig fields (classes is derived;
                                  # augment: null or absent resolves to DEFAULT_AUGMENTATION, written
                                  # out in full; {} is no augmentation)
    preprocess: {stain: none|macenko}
    train: {...}                  # nuclei_tf.train.trainer.TrainConfig fields
    members: [...]                # gbunet, ensemble: member specs (nuclei_tf.train.members);
                                  # default: Lagree's ImageNet-pretrained VGG-19/ResNet-101/DenseNet-121 U-Nets
    precision: auto
    seed: 0
    dataset: {...}                # protocol folder only: your own folder's description
                                  # (nuclei_tf.data.folder.describe_folder: root, labels, val_fraction, mpp)
    start_from: null              # a model folder to fine-tune (its model.keras is the starting point;
                                  # arch, model, preprocess and data come from its trained_with)
"""
import copy
from pathlib import Path

import yaml

from nuclei_tf.data.folder import DATASET_DEFAULTS, check_description
from nuclei_tf.data.pipeline import PipelineConfig
from nuclei_tf.models.members import LAGREE_PRETRAINED_MEMBERS
from nuclei_tf.preprocess.augment import DEFAULT_AUGMENTATION
from nuclei_tf.models.heads import HEAD_CHANNELS
from nuclei_tf.models.registry import get_spec
from nuclei_tf.train.losses import HEAD_LOSSES
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
    "dataset": None,
    "start_from": None,
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
            loaded = yaml.safe_load(Path(path).read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not a valid YAML file ({exc})") from None
        loaded = {} if loaded is None else loaded  # an empty file (an empty list or string is refused below)
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
    check_stacked_head(config, spec, path)
    unknown = sorted(set(config["model"]) - set(spec.options))
    if unknown:
        raise ValueError(f"{path or 'config'}: unknown model option(s) {', '.join(unknown)} for arch {config['arch']!r}; "
                         f"valid: {', '.join(o for o in spec.options if o != 'members')}")
    if config["members"] is None and "members" in spec.options:
        config["members"] = [dict(member) for member in LAGREE_PRETRAINED_MEMBERS]
    head = config["model"].get("head", spec.options.get("head", "foreground"))
    classes = HEAD_CHANNELS.get(head) or config["model"].get("classes", spec.options.get("classes", 1))
    try:
        config["data"] = PipelineConfig.from_dict({**config["data"], "classes": classes, "seed": seed}).to_dict()
        if config["data"]["augment"] is None:  # what the pipeline runs, recorded in the run folder and model folder
            config["data"]["augment"] = copy.deepcopy(DEFAULT_AUGMENTATION)
        config["train"] = TrainConfig(**{**config["train"], "seed": seed}).to_dict()
    except (TypeError, ValueError) as exc:  # an unknown or invalid field in the data or train section
        raise ValueError(f"{path or 'config'}: {exc}") from None
    check_dataset(config, path)
    stain = config["preprocess"].get("stain", "none")
    if config["data"]["normalize"] != "none" and stain != "none":
        raise ValueError(f"{path or 'config'}: data.normalize {config['data']['normalize']!r} and preprocess.stain {stain!r} "
                         "are two input normalisations; choose one (the other none)")
    loss = config["train"]["loss"]
    if HEAD_LOSSES.get(head) != (loss if loss in HEAD_LOSSES.values() else None):
        pairs = "; ".join(f"head: {h} and loss: {l}" for h, l in HEAD_LOSSES.items())
        raise ValueError(f"{path or 'config'}: model head {head!r} with train loss {loss!r}; {pairs} go together")
    return config


def check_dataset(config, path):
    """Protocol ``folder`` needs its folder's description (``dataset``), and only it has one; a
    stacked model cannot be fine-tuned from one folder (``start_from``)."""
    where = path or "config"
    if config["protocol"] == "folder":
        if not isinstance(config["dataset"], dict) or "root" not in config["dataset"]:
            raise ValueError(f"{where}: protocol folder needs your folder: --data ROOT (or a dataset section with its root)")
        config["dataset"] = check_description({**DATASET_DEFAULTS, **config["dataset"]}, where)
    elif config["dataset"] is not None:
        raise ValueError(f"{where}: a dataset section belongs to protocol folder (your own data), not {config['protocol']}")
    if config["start_from"] is not None and config["arch"] in ("gbunet", "ensemble"):
        raise ValueError(f"{where}: start_from fine-tunes a single model; {config['arch']} is built from members")


def check_stacked_head(config, spec, path):
    """gbunet and ensemble combine foreground maps: a ``head`` for them or for a member they
    train from its ``{arch: ...}`` spec is refused (:func:`nuclei_tf.models.members.load_members`)."""
    if "members" not in spec.options:
        return
    heads = [config["model"]] + [m for m in config["members"] or [] if isinstance(m, dict)]
    if any(options.get("head", "foreground") != "foreground" for options in heads):
        raise ValueError(f"{path or 'config'}: {config['arch']} (a stacked model) and its members have the foreground "
                         "head only; the three_class head is for single U-Nets")
