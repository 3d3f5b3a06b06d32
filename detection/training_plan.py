"""What a training run is asked to do: hyper-parameters (``Hyper``) and the plan (``Plan``)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from .features import FeatureConfig

# The seed's search ranges.
SEARCH_SPACE = {
    "lr": (1e-5, 5e-2),  # log-uniform
    "dropout": (0.0, 0.7),
    "beta1": (0.9, 0.99),
    "weight_decay": (0.0, 1e-6),
}


class TrainingError(ValueError):
    """Training cannot run on what it was given."""


@dataclass
class Hyper:
    """What one training run of a network needs besides the data."""

    arch: str = "A"
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    dropout: float = 0.3
    balance: str = "sample"  # "sample": equal positives and negatives per epoch; "pos_weight"
    arch_params: dict = field(default_factory=dict)
    # "constant" or "cosine" (the learning rate falls from ``lr`` to 0 over the epochs)
    lr_schedule: str = "constant"
    # Networks trained from different seeds and averaged (``networks.Ensemble``); 1 = one.
    members: int = 1
    # Share of each epoch's negative draw ("sample" balance) made in proportion to the
    # negatives' last training loss instead of uniformly: 0 = uniform; 0.5 = half and half.
    hard_negatives: float = 0.0
    # Knowledge distillation: 0 = off. Above 0, the ``members`` networks are teachers and
    # the model is ONE network of ``arch`` whose target for each window is
    # ``(1 - distill) * label + distill * the teachers' probability`` on the same
    # (augmented) input: close to the ensemble's judgement at a third of its cost to serve.
    distill: float = 0.0

    def served_members(self) -> int:
        """How many networks the trained model holds (a distilled model holds one)."""
        return 1 if self.distill > 0 else self.members

    def optimiser_params(self) -> dict:
        return {k: getattr(self, k) for k in ("lr", "beta1", "beta2", "eps", "weight_decay")}


@dataclass
class Plan:
    """Everything about a training run that is not a network hyper-parameter."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    folds: int = 5
    cross_validate: bool = True
    stride_s: float = 0.1  # serving / evaluation stride
    train_stride_s: float = 0.1
    aug_copies: int = 2
    augment: dict | None = None  # AugmentConfig.to_dict(); None = its defaults
    search: int = 0
    search_epochs: int | None = None
    threads: int = 2
    seed: int = 0
    progress: bool = True
    # False: cross-validate and write the report only, no final model (comparing setups).
    final: bool = True
    # What the out-of-fold threshold maximises F1 over: "files" (a file counts as detected
    # when any window reaches the threshold -- the event the product alerts on) or "windows".
    threshold_on: str = "files"
    # Device rates each held-out file is also scored at (through the serving resampler and
    # back, as a device streaming at that rate is heard), so that the out-of-fold figures
    # and the threshold cover those devices too. Each copy counts as a file of its own.
    eval_rates: tuple[int, ...] = ()
    # "kfold": grouped K-fold (``folds``); "loso": out-of-source, whole sources held out --
    # one fold per source, or ``source_folds`` folds of whole sources when above 0. The
    # threshold and the live decision then come from out-of-source predictions only.
    validation: str = "kfold"
    source_folds: int = 0


# --------------------------------------------------------------------------- folds


def hyper_fields() -> list[str]:
    return [f.name for f in fields(Hyper)]
