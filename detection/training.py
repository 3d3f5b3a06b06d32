"""Training with grouped K-fold cross-validation, random search, and the final model artifact.

The flow (``run_training``):

1. every labelled recording's feature columns are computed once (``FeatureStore``, cached);
2. recordings are split into K folds by ``group`` (``grouped_folds``), balancing scream files,
   or, with ``validation="loso"``, by ``source`` (``source_validation.source_folds``): each
   collection held out once, alone or in K folds of whole sources, and the figures are also
   given per held-out source, with false alerts on a long 16 kHz stream of its non-scream
   audio;
3. for each fold a network is trained on the other folds -- their original audio plus a few
   waveform-augmented copies whose background mixes come only from negatives of the copied
   file's own fold (so never from the held-out fold; each copy is made once and reused) --
   and scores every window of its validation files (out-of-fold);
4. the operating threshold maximises F1 over all out-of-fold windows; per-fold and mean
   figures are computed at it;
5. a final network is trained on every file and saved with ``save_artifact`` together with
   ``metrics.json`` and ``report.md`` (+ images).

``--search N`` first scores N random hyper-parameter sets by grouped-CV mean F1 and trains
with the best. Everything is deterministic for a given seed.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import subprocess
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from .dataset import (
    NEGATIVE,
    POSITIVE,
    FeatureStore,
    FileFeatures,
    Recording,
    audio_seconds,
    file_windows,
)
from .evaluation import (
    Scored,
    best_f1_threshold,
    build_report,
    by_input,
    device_copy_name,
    file_top_scores,
    fold_means,
    summarize,
)
from .features import FeatureConfig, normalize_windows
from .progress import tqdm
from .source_validation import (
    BY_SOURCE_NOTE,
    SourceSplitError,
    by_source_md,
    source_folds,
    source_streams,
    source_table,
)

# The seed's search ranges.
SEARCH_SPACE = {
    "lr": (1e-5, 5e-2),  # log-uniform
    "dropout": (0.0, 0.7),
    "beta1": (0.9, 0.99),
    "weight_decay": (0.0, 1e-6),
}
MAX_BACKGROUNDS = 48  # negative files loaded as mixing backgrounds per training set


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


def grouped_folds(recordings: list[Recording], k: int, seed: int = 0) -> np.ndarray:
    """Fold number of every recording: no group in two folds, scream files spread evenly.

    Greedy: groups in decreasing size (scream files first), each into the fold that so far
    has the fewest files of that group's kind (scream or its negative sub-label), then the
    fewest files overall. Ties between equal groups are broken by ``seed``.
    """
    if k < 2:
        raise TrainingError(f"need at least 2 folds, got {k}")
    groups: dict[str, list[int]] = {}
    for index, rec in enumerate(recordings):
        groups.setdefault(rec.group, []).append(index)
    if len(groups) < k:
        raise TrainingError(
            f"{len(groups)} recording group(s) cannot be split into {k} folds; use fewer folds"
        )
    rng = np.random.default_rng(seed)
    names = list(groups)
    jitter = dict(zip(names, rng.permutation(len(names)), strict=True))

    def kind(name: str) -> str:
        kinds = [recordings[i].kind for i in groups[name]]
        # The commonest kind; a tie goes to the first in sorted order (not to a set's order,
        # which changes with each process's string hashing and moved groups between folds).
        return "1" if "1" in kinds else max(sorted(set(kinds)), key=kinds.count)

    def size(name: str) -> int:
        return len(groups[name])

    order = sorted(names, key=lambda g: (kind(g) != "1", -size(g), jitter[g]))
    per_kind = {}
    totals = np.zeros(k, dtype=np.int64)
    assignment = np.full(len(recordings), -1, dtype=np.int64)
    for name in order:
        counts = per_kind.setdefault(kind(name), np.zeros(k, dtype=np.int64))
        fold = min(range(k), key=lambda f: (counts[f], totals[f], f))
        counts[fold] += size(name)
        totals[fold] += size(name)
        assignment[groups[name]] = fold
    return assignment


VALIDATIONS = ("kfold", "loso")


def validation_folds(recordings: list[Recording], plan: Plan) -> np.ndarray:
    """The fold of every recording for ``plan.validation``."""
    if plan.validation == "kfold":
        return grouped_folds(recordings, plan.folds, plan.seed)
    if plan.validation == "loso":
        try:
            return source_folds(
                [r.source for r in recordings],
                [audio_seconds(r) for r in recordings],
                plan.source_folds,
            )
        except SourceSplitError as exc:
            raise TrainingError(str(exc)) from exc
    raise TrainingError(f"unknown validation {plan.validation!r} ({' or '.join(VALIDATIONS)})")


# --------------------------------------------------------------------------- window sets


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
):
    """A network trained on the labelled windows of ``data``; returns it in eval mode.

    ``augment`` (an ``AugmentConfig``) switches per-batch SpecAugment on or off. With
    ``hyper.members`` > 1 it trains that many from different seeds (the first from ``seed``,
    so its weights are those of a single network) and returns their ``Ensemble``. With
    ``hyper.distill`` > 0 those networks are teachers, and the returned network is one
    student trained on their judgement (``train_student``).
    """
    if hyper.members < 1:
        raise TrainingError(f"members must be at least 1, got {hyper.members}")
    check_distill(hyper.distill)
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
        return _train_one(data, hyper, cfg, seed, progress, label, augment)
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
        )
        for m in range(hyper.members)
    ]
    return Ensemble(nets).eval()


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


def augment_config(plan: Plan):
    from .augment import AugmentConfig

    return AugmentConfig.from_dict(plan.augment) if plan.augment else AugmentConfig()


def shift_safe(rec: Recording, duration_s: float) -> bool:
    """Whether shifting a file's audio in time keeps its labels true.

    The augmenter's time shift is circular and does not say by how much, so it is only used
    on files labelled as one whole (one label over >= 99 % of the audio, e.g. a negative
    clip); on files with labelled stretches (scream files) it would move the sound away
    from its label.
    """
    labels = {s.label for s in rec.segments}
    covered = sum(s.duration for s in rec.segments)
    return len(labels) == 1 and covered >= 0.99 * duration_s


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def background_pool(
    recordings: list[Recording], pools: np.ndarray, pool: int, seed: int
) -> list[int]:
    """Indices of the negative files of ``pool`` used as mixing backgrounds (at most
    ``MAX_BACKGROUNDS``, drawn with the seed)."""
    negatives = [i for i, rec in enumerate(recordings) if pools[i] == pool and not rec.has_scream]
    if len(negatives) > MAX_BACKGROUNDS:
        rng = np.random.default_rng([seed, 7919, pool])
        negatives = sorted(rng.choice(negatives, MAX_BACKGROUNDS, replace=False).tolist())
    return negatives


class Corpus:
    """The recordings of a run with their original features and their augmented copies.

    ``pools`` assigns every file to a background pool (its cross-validation fold). A file's
    augmented copies mix in backgrounds from negatives of its own pool only, so a copy never
    carries audio of another fold: when fold v is held out, every training copy comes from
    other folds' audio alone. Copies therefore do not depend on which fold is held out and are
    computed once per file, then reused by every fold and by the final model.
    """

    def __init__(
        self,
        recordings: list[Recording],
        store: FeatureStore,
        plan: Plan,
        pools: np.ndarray | None = None,
    ):
        self.recordings = recordings
        self.store = store
        self.plan = plan
        self.cfg = store.cfg
        self.pools = np.zeros(len(recordings), dtype=np.int64) if pools is None else pools
        self.original = [
            store.features(rec)
            for rec in tqdm(
                recordings, desc="features", unit="file", leave=False, disable=not plan.progress
            )
        ]
        self._copies: dict[tuple[int, int], FileFeatures] = {}

    def _pool_backgrounds(self, pool: int) -> tuple[list[int], str]:
        aug_cfg = augment_config(self.plan)
        negatives = background_pool(self.recordings, self.pools, pool, self.plan.seed)
        ids = [self.recordings[i].rel for i in negatives]
        tag = _digest({"aug": aug_cfg.to_dict(), "seed": self.plan.seed, "bg": ids})
        return negatives, tag

    def augmented(self, files: np.ndarray, label: str) -> list[FileFeatures]:
        """``aug_copies`` augmented copies of each of ``files`` (computed once, then reused)."""
        if self.plan.aug_copies <= 0:
            return []
        from .augment import WaveAugmenter

        aug_cfg = augment_config(self.plan)
        no_shift = replace(aug_cfg, time_shift=False)
        pool_info = {int(p): self._pool_backgrounds(int(p)) for p in np.unique(self.pools[files])}
        loaded: dict[int, list[np.ndarray]] = {}
        items = [(int(i), c) for c in range(self.plan.aug_copies) for i in files]
        todo = [item for item in items if item not in self._copies]
        for i, copy in tqdm(
            todo,
            desc=f"{label}: augment",
            unit="file",
            leave=False,
            disable=not self.plan.progress or not todo,
        ):
            rec = self.recordings[i]
            pool = int(self.pools[i])
            negatives, tag = pool_info[pool]

            def augment(audio, rec=rec, copy=copy, pool=pool, negatives=negatives):
                if pool not in loaded:  # loaded only when something is not cached yet
                    loaded[pool] = [self.store.audio(self.recordings[j]) for j in negatives]
                file_seed = int(self.store.file_hash(rec.path)[:8], 16)
                generator = np.random.default_rng([self.plan.seed, copy, file_seed])
                safe = shift_safe(rec, audio.shape[0] / self.cfg.sample_rate)
                augmenter = WaveAugmenter(aug_cfg if safe else no_shift, loaded[pool], generator)
                return augmenter(audio)

            self._copies[(i, copy)] = self.store.features(
                rec, variant=f"aug-{tag}-c{copy}", augment=augment
            )
        return [self._copies[item] for item in items]

    def training_set(self, train: np.ndarray, label: str) -> WindowSet:
        items = [self.original[i] for i in train] + self.augmented(train, label)
        stride = self.cfg.stride_columns(self.plan.train_stride_s)
        return WindowSet.build(items, self.cfg, stride, labelled_only=True)

    def scoring_set(self, files: np.ndarray) -> WindowSet:
        """Windows of ``files`` and of their copies at each of ``plan.eval_rates``; in
        ``.file``, copy ``r`` (1-based) of file ``k`` of ``files`` is ``k + r * len(files)``."""
        stride = self.cfg.stride_columns(self.plan.stride_s)
        items = [self.original[i] for i in files]
        for rate in self.plan.eval_rates:
            items += [self.store.at_rate(self.recordings[int(i)], rate) for i in files]
        return WindowSet.build(items, self.cfg, stride, labelled_only=False)


# --------------------------------------------------------------------------- cross-validation


@dataclass
class CVResult:
    scored: Scored  # out-of-fold scores of every window of every file
    fold_of_file: np.ndarray
    threshold: float
    summary: dict  # at the threshold, all out-of-fold windows
    folds: list[dict]
    means: dict
    seconds: float
    # The figures again for each input: as recorded, and at each of ``--eval-rates``.
    by_input: dict = field(default_factory=dict)
    # The live decision defaults, chosen through the decision logic (``choose_decision``).
    decision: ChosenDecision | None = None
    # Out-of-source validation: figures per held-out source (``source_table``).
    by_source: dict | None = None


def choose_threshold(scored: Scored, on: str) -> float:
    """The threshold maximising out-of-fold F1 of files (any window over it) or of windows."""
    if on == "files":
        top = file_top_scores(scored.file_index, scored.scores, scored.file_truth.size)
        seen = np.isfinite(top)
        return best_f1_threshold(scored.file_truth[seen], top[seen])[0]
    if on == "windows":
        lab = scored.labelled
        return best_f1_threshold(scored.targets[lab] == POSITIVE, scored.scores[lab])[0]
    raise TrainingError(f"unknown threshold_on {on!r} (files or windows)")


def held_out_streams(corpus: Corpus, net, valid: np.ndarray) -> dict[str, np.ndarray]:
    """Window probabilities of one long stream per held-out source (``source_streams``)."""
    return source_streams(
        corpus.recordings,
        valid,
        corpus.store.audio,
        corpus.cfg,
        corpus.cfg.stride_columns(corpus.plan.stride_s),
        network_predict(net, corpus.cfg),
        corpus.plan.progress,
    )


def cross_validate(
    corpus: Corpus,
    hyper: Hyper,
    folds: np.ndarray,
    label: str = "cv",
    decide: bool = True,
    by_source: bool = False,
) -> CVResult:
    """Train K networks, each scoring its held-out fold; threshold and figures out of fold.

    ``decide``: also choose the live decision (``choose_decision``); a search trial, scored by
    its mean window F1 only, skips it. ``by_source``: the folds hold out whole sources; the
    figures are also given per held-out source (``source_table``)."""
    began = time.monotonic()
    k = int(folds.max()) + 1
    n_files = len(corpus.recordings)
    scores, targets, subs, file_index = [], [], [], []
    streams: dict[str, np.ndarray] = {}
    bar = tqdm(range(k), desc=label, unit="fold", leave=False, disable=not corpus.plan.progress)
    for fold in bar:
        train = np.flatnonzero(folds != fold)
        valid = np.flatnonzero(folds == fold)
        data = corpus.training_set(train, f"{label} fold {fold}")
        net = train_network(
            data,
            hyper,
            corpus.cfg,
            seed=corpus.plan.seed * 1000 + fold,
            progress=corpus.plan.progress,
            label=f"{label} fold {fold}",
            augment=augment_config(corpus.plan),
        )
        held = corpus.scoring_set(valid)
        scores.append(score_windows(net, held, corpus.cfg))
        if by_source:
            streams.update(held_out_streams(corpus, net, valid))
        targets.append(held.target)
        subs.append(held.sublabel)
        # Copy r of a held-out file is file (its index + r * n_files) of the scored set.
        copy, within = np.divmod(held.file, valid.size)
        file_index.append(valid[within] + copy * n_files)
    rates = corpus.plan.eval_rates
    scored = Scored(
        scores=np.concatenate(scores),
        targets=np.concatenate(targets),
        sublabels=np.concatenate(subs),
        file_index=np.concatenate(file_index),
        file_truth=np.tile([r.has_scream for r in corpus.recordings], 1 + len(rates)),
        file_names=[r.rel for r in corpus.recordings]
        + [device_copy_name(r.rel, rate) for rate in rates for r in corpus.recordings],
    )
    lab = scored.labelled
    if not np.any(scored.targets[lab] == POSITIVE):
        raise TrainingError("no labelled scream window in any validation fold")
    threshold = clip_threshold(choose_threshold(scored, corpus.plan.threshold_on))
    summary = summarize(scored, threshold)
    chosen = (
        choose_decision(scored, threshold, corpus.cfg, corpus.plan.stride_s) if decide else None
    )
    decision = chosen.decision if chosen else decision_defaults(threshold)
    summary["alerts"] = out_of_fold_alerts(
        scored, threshold, corpus.cfg, corpus.plan.stride_s, decision
    )
    fold_rows = []
    for fold in range(k):
        files = np.flatnonzero(folds == fold)
        copies = np.concatenate([files + r * n_files for r in range(1 + len(rates))])
        fold_rows.append(
            {
                "fold": fold,
                "n_files": int(files.size),
                "n_groups": len({corpus.recordings[i].group for i in files}),
                "n_scream_files": int(sum(corpus.recordings[i].has_scream for i in files)),
                "summary": summarize(scored.subset(copies), threshold),
            }
        )
    assert n_files * (1 + len(rates)) == scored.file_truth.size
    return CVResult(
        scored=scored,
        fold_of_file=folds,
        threshold=threshold,
        summary=summary,
        folds=fold_rows,
        means=fold_means(fold_rows),
        seconds=time.monotonic() - began,
        by_input=by_input(scored, threshold, np.tile(folds, 1 + len(rates))),
        decision=chosen,
        by_source=source_table(
            scored,
            corpus.recordings,
            folds,
            threshold,
            streams,
            lambda s: out_of_fold_alerts(s, threshold, corpus.cfg, corpus.plan.stride_s, decision),
        )
        if by_source
        else None,
    )


def clip_threshold(threshold: float) -> float:
    """Artifacts need a threshold strictly inside (0, 1)."""
    return float(min(max(threshold, 1e-4), 1.0 - 1e-4))


# --------------------------------------------------------------------------- search


def sample_hyper(base: Hyper, rng: np.random.Generator) -> Hyper:
    """One random draw from the seed's search ranges (lr log-uniform)."""
    lo, hi = SEARCH_SPACE["lr"]
    return replace(
        base,
        lr=float(math.exp(rng.uniform(math.log(lo), math.log(hi)))),
        dropout=float(rng.uniform(*SEARCH_SPACE["dropout"])),
        beta1=float(rng.uniform(*SEARCH_SPACE["beta1"])),
        eps=1e-8,
        weight_decay=float(rng.uniform(*SEARCH_SPACE["weight_decay"])),
    )


SEARCHED = ("lr", "dropout", "beta1", "eps", "weight_decay")


def random_search(
    corpus: Corpus, base: Hyper, folds: np.ndarray, trials: int, epochs: int | None
) -> tuple[Hyper, list[dict]]:
    """Score ``trials`` random draws by grouped-CV mean F1; the best draw (full epochs)."""
    rng = np.random.default_rng([corpus.plan.seed, 31337])
    rows = []
    best, best_score = base, -1.0
    bar = tqdm(range(trials), desc="search", unit="trial", disable=not corpus.plan.progress)
    for trial in bar:
        hyper = sample_hyper(base, rng)
        trial_hyper = replace(hyper, epochs=epochs or base.epochs)
        try:
            result = cross_validate(
                corpus, trial_hyper, folds, label=f"trial {trial}", decide=False
            )
            score = result.means["f1"]
        except TrainingError as exc:  # a diverging draw scores 0, the search goes on
            score, result = 0.0, None
            bar.write(f"trial {trial}: {exc}")
        rows.append(
            {
                "trial": trial,
                "score": float(score),
                "params": {k: getattr(hyper, k) for k in SEARCHED},
                "epochs": trial_hyper.epochs,
                "threshold": result.threshold if result else None,
            }
        )
        if score > best_score:
            best, best_score = hyper, score
        bar.set_postfix(best=f"{best_score:.3f}")
    return best, rows


# --------------------------------------------------------------------------- the whole run


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def out_of_fold_alerts(
    scored: Scored, threshold: float, cfg: FeatureConfig, stride_s: float, decision: dict
):
    """False alerts per hour of held-out non-scream audio at the model's decision defaults
    (``evaluation.alert_figures``): the out-of-fold counterpart of ``bench.false_alerts``."""
    from .decision import DecisionConfig
    from .evaluation import alert_figures

    stride = cfg.column_start_s(cfg.stride_columns(stride_s))
    chosen = DecisionConfig.from_model(decision, threshold)
    return alert_figures(scored, chosen, stride, cfg.window_span_s())


# The decision shapes tried out of fold: (smoothing windows, minimum duration in seconds).
# On a tie the later (more smoothing, longer) shape wins: fewer spikes reach operators.
DECISION_SHAPES = ((1, 0.0), (2, 0.0), (3, 0.0), (3, 0.1), (3, 0.3))
OFF_RATIO = 0.7  # a live incident stays active down to this share of its on threshold


@dataclass
class ChosenDecision:
    decision: dict  # the model's ``config["decision"]``
    sweep: list[dict]  # alert figures at each on threshold, for the chosen shape
    shapes: list[dict]  # each shape's best point


def choose_decision(
    scored: Scored, threshold: float, cfg: FeatureConfig, stride_s: float
) -> ChosenDecision:
    """The live decision defaults, chosen out of fold through the decision logic itself.

    For each shape of ``DECISION_SHAPES`` the on threshold is swept (``alert_sweep``); the
    shape and on threshold with the best F1 over files (a file counts as alerted when an
    incident opens in it) win. ``threshold`` (any single window over it) stays the offline
    ``detect`` threshold: a live stream decides on smoothed windows and a minimum duration,
    so its best point is another. The chosen shape's whole sweep goes to ``metrics.json`` and
    the report, for choosing a sensitivity."""
    from .decision import DecisionConfig
    from .evaluation import alert_sweep, best_alert_on_threshold, on_threshold_grid

    stride = cfg.column_start_s(cfg.stride_columns(stride_s))
    grid = np.union1d(on_threshold_grid(), [threshold])
    best, shapes = None, []
    for smoothing, min_duration in DECISION_SHAPES:
        shape = decision_defaults(threshold, smoothing=smoothing, min_duration_s=min_duration)
        base = DecisionConfig.from_model(shape, threshold)
        rows = alert_sweep(scored, base, stride, cfg.window_span_s(), grid, off_ratio=OFF_RATIO)
        top = best_alert_on_threshold(rows)
        shapes.append({"smoothing_windows": smoothing, "min_duration_s": min_duration, **top})
        if best is None or top["f1"] >= best[0]["f1"]:
            best = (top, rows, smoothing, min_duration)
    top, rows, smoothing, min_duration = best
    decision = decision_defaults(
        threshold,
        on_threshold=clip_threshold(top["on_threshold"]),
        smoothing=smoothing,
        min_duration_s=min_duration,
    )
    return ChosenDecision(decision=decision, sweep=rows, shapes=shapes)


def decision_defaults(
    threshold: float,
    on_threshold: float | None = None,
    smoothing: int = 3,
    min_duration_s: float = 0.3,
) -> dict:
    """The live decision defaults written into a model's config: opening at ``on_threshold``
    (chosen on alerts out of fold; the window threshold when there is none)."""
    on = threshold if on_threshold is None else on_threshold
    return {
        "on_threshold": on,
        "off_threshold": on * OFF_RATIO,
        "smoothing_windows": smoothing,
        "min_duration_s": min_duration_s,
        "merge_gap_s": 2.0,
        "cooldown_s": 5.0,
    }


def _jsonable(obj):
    """Metrics as strict JSON (nan -> null)."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    return obj


def data_counts(corpus: Corpus) -> dict:
    recs = corpus.recordings
    kinds = [r.kind for r in recs]
    return {
        "files": len(recs),
        "groups": len({r.group for r in recs}),
        "sources": len({r.source for r in recs}),
        "files_by_kind": {k: kinds.count(k) for k in sorted(set(kinds))},
        "audio_minutes": round(sum(f.duration_s for f in corpus.original) / 60.0, 2),
    }


def run_training(
    recordings: list[Recording],
    out: str | Path,
    hyper: Hyper,
    plan: Plan,
    data_dir: str = "",
    command: str = "",
    name: str | None = None,
    cache_dir: str | Path | None = None,
    log=print,
) -> dict:
    """Cross-validate (unless ``plan.cross_validate`` is off), train the final model, save it.

    Returns the metrics written to ``metrics.json``.
    """
    import torch

    torch.set_num_threads(max(1, plan.threads))
    began = time.monotonic()
    if not recordings:
        raise TrainingError("no labelled recordings to train on")
    if not any(r.has_scream for r in recordings):
        raise TrainingError("no recording has a scream ('1') segment")
    if all(r.has_scream for r in recordings) and not any(
        s.label != "1" for r in recordings for s in r.segments
    ):
        raise TrainingError("no recording has a non-scream segment")
    cfg = plan.features
    store = FeatureStore(cfg, cache_dir=cache_dir)
    folds = None
    if plan.cross_validate or plan.search:
        folds = validation_folds(recordings, plan)
    corpus = Corpus(recordings, store, plan, pools=folds)
    loso = plan.validation == "loso"
    aug_cfg = augment_config(plan).to_dict()

    trials: list[dict] = []
    cv: CVResult | None = None
    if plan.search:
        hyper, trials = random_search(corpus, hyper, folds, plan.search, plan.search_epochs)
        log(
            f"search: best mean F1 {max(t['score'] for t in trials):.3f} with "
            + ", ".join(f"{k}={getattr(hyper, k):.3g}" for k in SEARCHED)
        )
    if plan.cross_validate:
        cv = cross_validate(corpus, hyper, folds, by_source=loso)
        log(
            f"{validation_words(plan, folds)}: mean fold window F1 {cv.means['f1']:.3f}, "
            f"pooled file F1 {cv.summary['file']['f1']:.3f}, threshold {cv.threshold:.3f}, "
            f"{cv.seconds:.0f} s"
        )
        if cv.by_source:
            log(by_source_words(cv.by_source))
    threshold = cv.threshold if cv else 0.5

    final_began = time.monotonic()
    net = None
    if plan.final:
        net = train_network(
            corpus.training_set(np.arange(len(recordings)), "final"),
            hyper,
            cfg,
            seed=plan.seed * 1000 + 999,
            progress=plan.progress,
            label="final",
            augment=augment_config(plan),
        )
    final_seconds = time.monotonic() - final_began

    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
    name = name or Path(out).name
    training = {
        "command": command,
        "data_dir": data_dir,
        "n_files": len(recordings),
        "data": data_counts(corpus),
        "seed": plan.seed,
        "epochs": hyper.epochs,
        "hyper": asdict(hyper),
        "plan": {k: v for k, v in asdict(plan).items() if k not in ("features", "progress")},
        "augmentation": aug_cfg,
        "date": now,
        "git_commit": git_commit(),
        "seconds": round(time.monotonic() - began, 1),
    }
    config = {
        "name": name,
        "created": now,
        "architecture": hyper.arch,
        "arch_params": {
            "dropout": hyper.dropout,
            **hyper.arch_params,
            **({"members": hyper.members} if hyper.served_members() > 1 else {}),
        },
        "features": cfg.to_dict(),
        "stride_s": plan.stride_s,
        "threshold": threshold,
        "threshold_source": (
            f"{'out-of-source' if loso else 'out-of-fold'} F1 maximum over {plan.threshold_on}"
            if cv
            else "default (no cross-validation)"
        ),
        "decision": cv.decision.decision if cv else decision_defaults(threshold),
        "training": training,
    }
    metrics: dict = {"threshold": threshold, "final_train_seconds": round(final_seconds, 1)}
    extra: dict[str, bytes | str] = {}
    if cv:
        if cv.by_source:
            metrics["by_source"] = cv.by_source
        metrics.update(
            {
                "cv": {
                    "validation": plan.validation,
                    "folds": int(folds.max()) + 1,
                    "out_of_fold": cv.summary,
                    "per_fold": [
                        {k: v for k, v in f.items() if k != "summary"} | f["summary"]
                        for f in cv.folds
                    ],
                    "mean": cv.means,
                    "by_input": cv.by_input,
                    "decision_shapes": cv.decision.shapes,
                    "alert_sweep": cv.decision.sweep,
                    "seconds": round(cv.seconds, 1),
                }
            }
        )
        intro = [
            f"Model `{name}`: {_network_words(hyper)}, {len(recordings)} files "
            f"({training['data']['groups']} groups) from `{data_dir}`, {hyper.epochs} epochs, "
            f"seed {plan.seed}.",
            "",
            f"Out-of-fold figures of {validation_words(plan, folds)} "
            f"(window stride {plan.stride_s} s); the operating threshold maximises F1 over "
            f"all out-of-fold {plan.threshold_on} (a file counts as detected when any of its "
            "windows reaches the threshold). "
            + (
                "The shipped weights are a final training on all files."
                if plan.final
                else "Cross-validation only: no final model was trained."
            ),
        ]
        if cv.by_source:
            intro += [
                "",
                "## Out-of-source validation, per held-out source",
                "",
                by_source_md(
                    cv.by_source["sources"],
                    cv.by_source["pooled"],
                    cv.by_source["mean"],
                    cv.by_source["stream_alerts"],
                )
                + BY_SOURCE_NOTE,
            ]
        extra = build_report(
            f"Training report: {name}",
            cv.scored,
            threshold,
            cv.summary,
            intro=intro,
            folds=cv.folds,
            trials=trials,
            config=config,
            alert_sweep=cv.decision.sweep,
            by_input=cv.by_input,
        )
        # Every out-of-fold score, so that an operating point can be chosen again (or another
        # decision tried) without training again: ``evaluation.Scored.from_npz``.
        extra["out_of_fold.npz"] = cv.scored.to_npz()
    else:
        extra["report.md"] = (
            f"# Training report: {name}\n\n{_capitalised(_network_words(hyper))}, trained on"
            f" {len(recordings)} files without "
            f"cross-validation; threshold {threshold} is a default, not measured.\n"
            + (_trials_md(trials) if trials else "")
            + "\n```json\n"
            + json.dumps(config, indent=2, sort_keys=True, default=str)
            + "\n```\n"
        )
    if trials:
        metrics["search"] = trials
    metrics = _jsonable(metrics)
    if net is None:  # report only
        from .evaluation import write_files

        Path(out).mkdir(parents=True, exist_ok=True)
        write_files(out, {**extra, "metrics.json": json.dumps(metrics, indent=2) + "\n"})
        return metrics
    from .artifacts import save_artifact

    save_artifact(out, net, _jsonable(config), metrics=metrics, extra_files=extra)
    return metrics


def validation_words(plan: Plan, folds: np.ndarray) -> str:
    """How the run was validated, in words."""
    k = int(folds.max()) + 1
    if plan.validation == "loso":
        if plan.source_folds:
            return f"out-of-source validation ({k} folds of whole sources)"
        return f"leave-one-source-out validation ({k} sources)"
    return f"grouped {k}-fold cross-validation"


def by_source_words(table: dict) -> str:
    """One line per held-out source for the command's output."""
    lines = []
    for row in table["sources"]:
        f = row["file"]
        alerts = table["stream_alerts"].get(row["source"])
        rate = f", {alerts['false_alerts_per_hour']} false alerts/h" if alerts else ""
        lines.append(
            f"  {row['source']}: {row['files']} files ({row['scream_files']} scream), file F1"
            f" {f['f1']:.3f} P {f['precision']:.3f} R {f['recall']:.3f}{rate}"
        )
    mean = table["mean"]
    return "held out per source:\n" + "\n".join(lines) + f"\n  mean file F1 {mean['file_f1']:.3f}"


def _capitalised(text: str) -> str:
    """``text`` with its first letter upper-case and the rest as written (unlike str.capitalize)."""
    return text[:1].upper() + text[1:]


def _network_words(hyper: Hyper) -> str:
    """What the model is: "architecture A (an ensemble of 3 networks)" and the like."""
    if hyper.served_members() > 1:
        return f"architecture {hyper.arch} (an ensemble of {hyper.members} networks)"
    if hyper.distill > 0:
        return (
            f"architecture {hyper.arch} (one network distilled from {hyper.members},"
            f" teachers' share of the target {hyper.distill})"
        )
    return f"architecture {hyper.arch}"


def _trials_md(trials: list[dict]) -> str:
    lines = ["\n## Hyper-parameter search\n", "| trial | mean F1 | params |", "|---|---|---|"]
    lines += [f"| {t['trial']} | {t['score']:.3f} | {t['params']} |" for t in trials]
    return "\n".join(lines) + "\n"


def hyper_fields() -> list[str]:
    return [f.name for f in fields(Hyper)]
