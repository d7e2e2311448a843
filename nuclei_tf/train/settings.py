"""Optimisation settings of a run (no TensorFlow import: any Keras backend can read them)."""
from dataclasses import asdict, dataclass
from typing import Optional


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (the papers': Lagree 1e-4, Kasturi 1e-4, Le Dinh 1e-4, Long 5e-4).

    ``fine_tune_epochs`` more epochs follow ``epochs`` at ``fine_tune_learning_rate`` (Long 2020,
    "Training settings": U-Net++ "fine-tuned for another 5 epochs ... with smaller learning
    rate 0.0001 or 0.0003"); the best validation loss is tracked over all of them.

    ``ema_momentum``: keep the exponential moving average of the weights, updated after every
    step, ``average <- m * average + (1 - m) * weights`` (Polyak & Juditsky 1992; weight
    averaging finds flatter minima that hold up better under domain shift, Cha et al. 2021,
    SWAD). Validation, ``best.keras`` and ``last.keras`` use the averaged weights; training and
    the resume checkpoint go on from the raw ones. E.g. 0.995 averages about the last 200 steps.
    """

    epochs: int = 20
    steps_per_epoch: Optional[int] = None
    learning_rate: float = 1e-4
    loss: str = "lagree2021"
    clipnorm: Optional[float] = None
    fine_tune_epochs: int = 0
    fine_tune_learning_rate: Optional[float] = None
    ema_momentum: Optional[float] = None
    seed: int = 0

    def __post_init__(self):
        if self.fine_tune_epochs < 0:
            raise ValueError(f"fine_tune_epochs must be >= 0, got {self.fine_tune_epochs}")
        if self.fine_tune_epochs and self.fine_tune_learning_rate is None:
            raise ValueError("fine_tune_epochs needs fine_tune_learning_rate")
        if self.ema_momentum is not None and not (isinstance(self.ema_momentum, float) and 0 < self.ema_momentum < 1):
            raise ValueError(f"ema_momentum must be between 0 and 1 (exclusive), got {self.ema_momentum}")

    @property
    def total_epochs(self):
        return self.epochs + self.fine_tune_epochs

    def to_dict(self):
        return asdict(self)
