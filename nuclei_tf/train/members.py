"""Stage 1 of the GB U-Net and the U-Net ensemble (Lagree 2021 Fig. 1 and "Ensemble networks"):
where each member comes from, and whether it is reused or trained.

A member spec in an experiment YAML's ``members`` list is one of:

- a path: a model folder (``model.keras`` + ``config.json``) or a ``.keras`` file, reused as it is;
- ``{config: experiments/X.yaml, run: runs/X}``: the member that experiment trains; reused when
  ``run`` holds a finished run (``summary.json``), else trained (or resumed) there;
- ``{arch: ..., <build_model options>}``: trained with the GB U-Net's own data and train
  sections in ``<run>/members/<index>``.

Every member must have been trained on the same preprocessing (stain normalisation, CLAHE + TV)
as the stage that uses it; a mismatch is refused, never silently mixed.
"""
import warnings
from dataclasses import dataclass
from pathlib import Path

import yaml

SPEC_KEYS = {"config", "run"}


@dataclass
class Member:
    """One member: its display name, its ``.keras`` path once stage 1 is done, and (for a member
    to train) the config and run folder it trains under."""

    index: int
    name: str
    model_path: Path
    config: dict = None
    run_dir: Path = None
    source: str = ""

    @property
    def finished(self):
        """True when nothing is left to train."""
        if self.config is None:
            return True
        return (self.run_dir / "summary.json").is_file() and self.model_path.is_file()

    @property
    def build_options(self):
        """``build_model`` options for this member's architecture (untrained), or its path if reused."""
        if self.config is None or self.finished:
            return str(self.model_path)
        return {"arch": self.config["arch"], **self.config["model"]}


def preprocess_key(preprocess, normalize=None):
    """What changes the pixels a model sees: its preprocess section (or a model folder's config)
    and its ``data.normalize`` (a model folder states ``stain: percentile`` for it)."""
    preprocess = preprocess or {}
    stain = preprocess.get("stain", "none")
    if stain == "percentile":
        stain, normalize = "none", "percentile"
    return {"stain": stain, "clahe_tv": bool(preprocess.get("clahe_tv", False)), "normalize": normalize or "none"}


def saved_preprocess(model_path):
    """The preprocessing a saved model was trained on: from its model folder's ``config.json`` or
    its run folder's ``config.yaml``; None when neither is there."""
    folder_config = model_path.with_name("config.json")
    if folder_config.is_file():
        from nuclei_tf.inference.folder_config import read_folder_config

        return preprocess_key(read_folder_config(folder_config))
    run_config = model_path.with_name("config.yaml")
    if run_config.is_file():
        config = yaml.safe_load(run_config.read_text()) or {}
        return preprocess_key(config.get("preprocess"), (config.get("data") or {}).get("normalize"))
    return None


def _model_file(path, index):
    path = Path(path)
    model_file = path / "model.keras" if path.is_dir() else path
    if not model_file.is_file():
        raise ValueError(f"member {index}: {model_file}: model file not found")
    return model_file


def resolve_member(index, spec, stage_config, run_dir):
    """The :class:`Member` described by ``spec`` (see the module docstring)."""
    from nuclei_tf.train.config import load_config

    expected = preprocess_key(stage_config["preprocess"], stage_config["data"].get("normalize"))
    if isinstance(spec, (str, Path)):
        model_file = _model_file(spec, index)
        found = saved_preprocess(model_file)
        if found is None:
            warnings.warn(f"member {index}: {model_file} has no config.json or config.yaml beside it; "
                          f"assuming it was trained on {expected}")
        elif found != expected:
            raise ValueError(f"member {index}: {model_file} was trained on {found}, this run uses {expected}")
        return Member(index, model_file.parent.name if model_file.name == "model.keras" else model_file.stem,
                      model_file, source=f"reuse {spec}")
    if isinstance(spec, dict) and "config" in spec:
        unknown = sorted(set(spec) - SPEC_KEYS)
        if unknown:
            raise ValueError(f"member {index}: unknown key(s) {', '.join(unknown)}; a config member has {sorted(SPEC_KEYS)}")
        config = load_config(spec["config"], {"seed": stage_config["seed"], "precision": stage_config["precision"]})
        if config["protocol"] != stage_config["protocol"]:
            raise ValueError(f"member {index}: {spec['config']} trains under protocol {config['protocol']!r}, "
                             f"this run under {stage_config['protocol']!r}")
        trains_on = preprocess_key(config["preprocess"], config["data"].get("normalize"))
        if trains_on != expected:
            raise ValueError(f"member {index}: {spec['config']} trains on {trains_on}, "
                             f"this run uses {expected}")
        member_dir = Path(spec.get("run") or Path(run_dir) / "members" / str(index))
        return Member(index, config["arch"], member_dir / "best.keras", config, member_dir, source=str(spec["config"]))
    if isinstance(spec, dict) and "arch" in spec:
        options = {k: v for k, v in spec.items() if k != "arch"}
        config = {**stage_config, "arch": spec["arch"], "model": options, "members": None}
        member_dir = Path(run_dir) / "members" / str(index)
        return Member(index, spec["arch"], member_dir / "best.keras", config, member_dir, source="this run's recipe")
    raise TypeError(f"member {index}: a member is a model path, {{config: ..., run: ...}} or {{arch: ...}}; got {spec!r}")


def resolve_members(specs, stage_config, run_dir):
    """Every member of ``specs`` as a :class:`Member`; an empty list is refused."""
    if not specs:
        raise ValueError(f"arch {stage_config['arch']!r} needs members (the 'members' list of the config)")
    return [resolve_member(index, spec, stage_config, run_dir) for index, spec in enumerate(specs)]
