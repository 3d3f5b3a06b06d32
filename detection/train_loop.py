"""Training one network: epochs over windows, hard negatives, distillation, scoring windows."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .dataset import (
    NEGATIVE,
    POSITIVE,
    FileFeatures,
    file_windows,
)
from .features import FeatureConfig, normalize_windows
from .progress import tqdm
from .training_plan import Hyper, TrainingError


@dataclass
class WindowSet:
    """Windows of several files, indexed without copying: ``(file, start column)`` pairs."""

    columns: list[np.ndarray]
    file: np.ndarray  # (N,) index into columns
    start: np.ndarray  # (N,) first column
    target: np.ndarray  # (N,) 1 / 0 / -1
    sublabel: np.ndarray  # (N,)

    @classmethod
    def build(
        cls, items: list[FileFeatures], cfg: FeatureConfig, stride_cols: int, labelled_only: bool
    ) -> WindowSet:
        files, starts, targets, subs = [], [], [], []
        for index, item in enumerate(items):
            s, t, sub = file_windows(item, cfg, stride_cols)
            if labelled_only:
                keep = t >= 0
                s, t, sub = s[keep], t[keep], sub[keep]
            files.append(np.full(s.shape[0], index, dtype=np.int64))
            starts.append(s)
            targets.append(t)
            subs.append(sub)

        def cat(parts, dtype):
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

        return cls(
            columns=[item.columns for item in items],
            file=cat(files, np.int64),
            start=cat(starts, np.int64),
            target=cat(targets, np.int8),
            sublabel=cat(subs, np.int8),
        )

    def __len__(self) -> int:
        return int(self.file.shape[0])

    def windows(self, indices: np.ndarray, width: int) -> np.ndarray:
        """Raw windows ``(len(indices), n_mels, width)``."""
        return np.stack(
            [self.columns[self.file[i]][:, self.start[i] : self.start[i] + width] for i in indices]
        )


# --------------------------------------------------------------------------- one network


def _seed_torch(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def epoch_indices(
    targets: np.ndarray,
    balance: str,
    rng: np.random.Generator,
    negative_weights: np.ndarray | None = None,
) -> np.ndarray:
    """The windows one epoch trains on, shuffled.

    ``sample``: every window of the rarer class plus as many drawn (without replacement)
    from the other, so each epoch sees both equally. ``pos_weight``: every window.
    ``negative_weights`` (one per window, used for the negatives in ``sample`` mode when there
    are more negatives than positives) makes the negatives' draw proportional to them.
    """
    pos = np.flatnonzero(targets == POSITIVE)
    neg = np.flatnonzero(targets == NEGATIVE)
    if balance == "sample" and pos.size and neg.size:
        n = min(pos.size, neg.size)
        if negative_weights is not None and n < neg.size:
            negatives = weighted_draw(neg, negative_weights[neg], n, rng)
            chosen = np.concatenate([rng.choice(pos, n, replace=False), negatives])
        else:  # (the draws in this order reproduce the models trained before hard negatives)
            chosen = np.concatenate(
                [rng.choice(pos, n, replace=False), rng.choice(neg, n, replace=False)]
            )
    else:
        chosen = np.concatenate([pos, neg])
    return rng.permutation(chosen)


def weighted_draw(
    items: np.ndarray, weights: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` of ``items`` drawn without replacement, each draw in proportion to ``weights``
    among those left (Efraimidis-Spirakis: the ``n`` largest ``u ** (1 / w)``, here in logs)."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != items.shape or not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError("weights must be finite, non-negative and one per item")
    keys = np.log(rng.random(items.size)) / np.maximum(weights, 1e-300)
    return items[np.argpartition(-keys, n - 1)[:n]] if n else items[:0]


def check_hard_negatives(share: float) -> None:
    if not 0.0 <= share <= 1.0:
        raise TrainingError(f"hard_negatives must be between 0 and 1, got {share}")


def hard_negative_weights(losses: np.ndarray, share: float) -> np.ndarray:
    """Draw weights from the negatives' last losses (NaN: not trained on yet, counted as the
    mean loss): ``1 - share`` of the draw uniform, ``share`` in proportion to the loss."""
    check_hard_negatives(share)
    known = np.isfinite(losses)
    if not known.any():
        return np.ones_like(losses, dtype=np.float64)
    filled = np.where(known, losses, np.mean(losses[known])).astype(np.float64)
    total = filled.sum()
    by_loss = filled / total if total > 0 else np.full(filled.size, 1.0 / filled.size)
    return (1.0 - share) / filled.size + share * by_loss


MEMBER_SEED_STEP = 100_003  # member m of an ensemble trains from seed + m * this


def check_distill(share: float) -> None:
    if not 0.0 <= share <= 1.0:
        raise TrainingError(f"distill must be between 0 and 1, got {share}")


def distilled_targets(labels, teacher, x, share: float):
    """The student's targets: ``(1 - share) * labels + share * teacher probability of x``.

    ``x`` is the student's own (augmented, normalised) batch, so the teacher judges exactly
    what the student sees. The teacher stays in eval mode and gets no gradient.
    """
    import torch

    with torch.no_grad():
        soft = torch.sigmoid(teacher(x))
    return (1.0 - share) * labels + share * soft


def train_network(
    data: WindowSet,
    hyper: Hyper,
    cfg: FeatureConfig,
    seed: int,
    progress: bool = True,
    label: str = "train",
    augment=None,
    init_state: dict | None = None,
):
    """A network trained on the labelled windows of ``data``; returns it in eval mode.

    ``init_state`` (a ``state_dict`` of the same architecture, an ensemble's included) starts
    training from those weights instead of fresh ones: fine-tuning a model already served.

    ``augment`` (an ``AugmentConfig``) switches per-batch SpecAugment on or off. With
    ``hyper.members`` > 1 it trains that many from different seeds (the first from ``seed``,
    so its weights are those of a single network) and returns their ``Ensemble``. With
    ``hyper.distill`` > 0 those networks are teachers, and the returned network is one
    student trained on their judgement (``train_student``).
    """
    if hyper.members < 1:
        raise TrainingError(f"members must be at least 1, got {hyper.members}")
    check_distill(hyper.distill)
    if init_state is not None and hyper.distill > 0:
        raise TrainingError("fine-tuning a distilled model is not supported: train from scratch")
    if hyper.distill > 0:
        teacher = train_network(
            data, replace(hyper, distill=0.0), cfg, seed, progress, f"{label} teacher", augment
        )
        return train_student(
            data,
            hyper,
            cfg,
            seed + hyper.members * MEMBER_SEED_STEP,
            teacher,
            progress,
            f"{label} student",
            augment,
        )
    if hyper.members == 1:
        return _train_one(data, hyper, cfg, seed, progress, label, augment, init_state=init_state)
    from .networks import Ensemble

    nets = [
        _train_one(
            data,
            hyper,
            cfg,
            seed + m * MEMBER_SEED_STEP,
            progress,
            f"{label} member {m + 1}/{hyper.members}",
            augment,
            init_state=member_state(init_state, m),
        )
        for m in range(hyper.members)
    ]
    return Ensemble(nets).eval()


def member_state(state: dict | None, member: int) -> dict | None:
    """The weights of ensemble member ``member`` in an ``Ensemble``'s ``state_dict``."""
    if state is None:
        return None
    prefix = f"members.{member}."
    part = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    if not part:
        raise TrainingError(f"the initial weights hold no ensemble member {member}")
    return part


def train_student(
    data: WindowSet,
    hyper: Hyper,
    cfg: FeatureConfig,
    seed: int,
    teacher,
    progress: bool = True,
    label: str = "student",
    augment=None,
):
    """One network of ``hyper.arch`` trained towards ``distilled_targets`` of ``teacher``."""
    check_distill(hyper.distill)
    if hyper.distill <= 0:
        raise TrainingError("a student needs distill > 0 (the teacher's share of its target)")
    return _train_one(data, hyper, cfg, seed, progress, label, augment, teacher=teacher)


def _train_one(
    data: WindowSet,
    hyper: Hyper,
    cfg: FeatureConfig,
    seed: int,
    progress: bool,
    label: str,
    augment,
    teacher=None,
    init_state: dict | None = None,
):
    import torch

    from .networks import build_network

    if not np.any(data.target == POSITIVE) or not np.any(data.target == NEGATIVE):
        raise TrainingError("training needs labelled scream and non-scream windows")
    _seed_torch(seed)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    net = build_network(
        hyper.arch,
        n_mels=cfg.n_mels,
        n_frames=cfg.window_columns,
        dropout=hyper.dropout,
        **hyper.arch_params,
    )
    if init_state is not None:
        try:
            net.load_state_dict(init_state)
        except RuntimeError as exc:
            raise TrainingError(f"the initial weights do not fit {hyper.arch}: {exc}") from exc
    optimiser = torch.optim.Adam(
        net.parameters(),
        lr=hyper.lr,
        betas=(hyper.beta1, hyper.beta2),
        eps=hyper.eps,
        weight_decay=hyper.weight_decay,
    )
    pos_weight = None
    if hyper.balance == "pos_weight":
        n_pos = int(np.sum(data.target == POSITIVE))
        n_neg = int(np.sum(data.target == NEGATIVE))
        pos_weight = torch.tensor(n_neg / max(n_pos, 1), dtype=torch.float32)
    elif hyper.balance != "sample":
        raise TrainingError(f"unknown balance {hyper.balance!r} (sample or pos_weight)")
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    # Hard negatives: the last training loss of every window (NaN until first trained on).
    check_hard_negatives(hyper.hard_negatives)
    hard = hyper.hard_negatives > 0
    if hard:
        per_window_loss = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction="none")
        last_loss = np.full(len(data), np.nan, dtype=np.float32)
        negatives = data.target == NEGATIVE
        weights = np.zeros(len(data), dtype=np.float64)
    if hyper.lr_schedule == "cosine":
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=hyper.epochs)
    elif hyper.lr_schedule == "constant":
        schedule = None
    else:
        raise TrainingError(f"unknown lr_schedule {hyper.lr_schedule!r} (constant or cosine)")
    spec_augment = None
    if augment is not None and augment.spec_augment:
        from .augment import augment_batch

        def spec_augment(x, generator):
            return augment_batch(augment, x, generator)

    width = cfg.window_columns
    bar = tqdm(range(hyper.epochs), desc=label, unit="epoch", leave=False, disable=not progress)
    for _epoch in bar:
        net.train()
        if hard:
            weights[negatives] = hard_negative_weights(last_loss[negatives], hyper.hard_negatives)
        order = epoch_indices(data.target, hyper.balance, rng, weights if hard else None)
        total, count = 0.0, 0
        for begin in range(0, order.size, hyper.batch_size):
            batch = order[begin : begin + hyper.batch_size]
            if batch.size < 2:
                continue  # BatchNorm needs more than one window
            x = torch.from_numpy(normalize_windows(data.windows(batch, width), cfg))
            if spec_augment is not None:
                x = spec_augment(x, generator)
            y = torch.from_numpy((data.target[batch] == POSITIVE).astype(np.float32))
            if teacher is not None:
                y = distilled_targets(y, teacher, x, hyper.distill)
            optimiser.zero_grad(set_to_none=True)
            if hard:
                losses = per_window_loss(net(x), y)
                last_loss[batch] = losses.detach().numpy()
                loss = losses.mean()
            else:
                loss = loss_fn(net(x), y)
            if not torch.isfinite(loss):
                raise TrainingError(f"{label}: loss became {loss.item()} (lr {hyper.lr} too high?)")
            loss.backward()
            optimiser.step()
            total += float(loss.item()) * batch.size
            count += batch.size
        if schedule is not None:
            schedule.step()
        bar.set_postfix(loss=f"{total / max(count, 1):.4f}")
    net.eval()
    return net


def network_predict(net, cfg: FeatureConfig):
    """``predict(raw windows) -> probabilities`` of a trained network (normalised as served)."""
    import torch

    def predict(windows: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(normalize_windows(windows, cfg))
            return torch.sigmoid(net(x)).numpy()

    return predict


def score_windows(net, data: WindowSet, cfg: FeatureConfig, batch_size: int = 512) -> np.ndarray:
    """Scream probabilities of every window of ``data`` (normalised as when serving)."""
    import torch

    out = np.empty(len(data), dtype=np.float32)
    width = cfg.window_columns
    net.eval()
    with torch.inference_mode():
        for begin in range(0, len(data), batch_size):
            idx = np.arange(begin, min(begin + batch_size, len(data)))
            x = torch.from_numpy(normalize_windows(data.windows(idx, width), cfg))
            out[idx] = torch.sigmoid(net(x)).numpy()
    return out


# --------------------------------------------------------------------------- augmented copies
