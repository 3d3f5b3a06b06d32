"""Retraining on operators' feedback: which clips train and which are held back, fine-tuning.

``assemble`` splits the data of a retraining run:

* the **fixed pack** is the evaluation set every candidate is measured on: the recordings of
  the fixed pack's root in fold 0 of a grouped split by *source* (``folds.grouped_folds`` with
  each file's collection as its group, scream collections spread first). When the fixed pack is
  also a base pack, those whole sources are left out of training; a separate fixed pack leaves
  out of training every base file of a source it holds. No source is on both sides.
* **held-back feedback**: for each site, the feedback clips whose verdict is at most
  ``holdout_days`` days older than that site's newest verdict; the rest of the feedback trains.
  Feedback clips are grouped by device (``feedback:<site>/<device>``) in the manifest.
* **training**: the base packs (less the fixed pack's sources) and the older feedback; each
  feedback clip is repeated ``feedback_repeats`` times, so that a few dozen verdicts weigh
  against hours of base audio.

``finetune`` trains the candidate network -- from the active model's weights (each member of an
ensemble from its own) or, with ``from_scratch``, from fresh ones -- and saves an artifact that
keeps the active model's features, threshold, live decision and second stage.

Pure: no Django. ``feedback.retrain`` runs it for ``manage.py retrain`` and the Celery task.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from .artifacts import (
    WEIGHTS_FILE,
    feature_config,
    read_model_config,
    save_artifact,
    weights_digest,
)
from .dataset import (
    DatasetError,
    FeatureStore,
    Recording,
    scan,
    scan_roots,
)
from .feedback_set import SOURCE, FeedbackInfo, read_feedback_manifest
from .folds import grouped_folds
from .progress import tqdm
from .train_loop import WindowSet, train_network
from .training import git_commit
from .training_plan import Hyper, TrainingError

FEEDBACK_PREFIX = "feedback/"


class RetrainError(TrainingError):
    """A retraining run cannot go on with what it was given (said in words for the operator)."""


@dataclass
class RetrainOptions:
    """What a retraining run is asked to do besides its data."""

    epochs: int = 3
    from_scratch: bool = False
    holdout_days: float = 7.0
    fixed_folds: int = 5  # the fixed pack is one fold of whole sources out of this many
    max_files: int | None = None  # base files trained on, at most (seeded; half scream files)
    max_eval_files: int | None = None  # fixed-pack files evaluated, at most
    feedback_repeats: int = 4
    lr: float | None = None  # None: 3e-4 when fine-tuning, 1e-3 from scratch
    batch_size: int = 128
    train_stride_s: float = 0.2
    seed: int = 0
    threads: int = 2
    progress: bool = True

    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return 1e-3 if self.from_scratch else 3e-4

    def check(self) -> None:
        if self.epochs < 1:
            raise RetrainError(f"epochs: at least 1, got {self.epochs}")
        if self.holdout_days < 0:
            raise RetrainError(f"holdout days: 0 or more, got {self.holdout_days}")
        if self.fixed_folds < 2:
            raise RetrainError(f"fixed folds: at least 2, got {self.fixed_folds}")
        if self.feedback_repeats < 1:
            raise RetrainError(f"feedback repeats: at least 1, got {self.feedback_repeats}")
        for name in ("max_files", "max_eval_files"):
            value = getattr(self, name)
            if value is not None and value < 2:
                raise RetrainError(f"{name.replace('_', ' ')}: at least 2, got {value}")


@dataclass
class RetrainData:
    """The recordings of a retraining run, split (``assemble``)."""

    base: list[Recording]  # base-pack files trained on
    feedback: list[Recording]  # feedback clips trained on
    heldback: list[Recording]  # feedback clips kept out of training, evaluated
    fixed: list[Recording]  # the fixed pack's evaluation files
    info: dict[str, FeedbackInfo] = field(default_factory=dict)  # feedback clip rel -> row
    fixed_sources: list[str] = field(default_factory=list)

    def describe(self) -> dict:
        def kinds(recs):
            names = [r.kind for r in recs]
            return {k: names.count(k) for k in sorted(set(names))}

        return {
            "base_files": len(self.base),
            "base_kinds": kinds(self.base),
            "base_sources": sorted({r.source for r in self.base}),
            "feedback_files": len(self.feedback),
            "feedback_kinds": kinds(self.feedback),
            "heldback_feedback_files": len(self.heldback),
            "heldback_kinds": kinds(self.heldback),
            "fixed_files": len(self.fixed),
            "fixed_kinds": kinds(self.fixed),
            "fixed_sources": self.fixed_sources,
            "sites": sorted({self.info[r.rel].site for r in self.feedback + self.heldback}),
        }

    def words(self) -> str:
        d = self.describe()
        return (
            f"{d['base_files']} base files and {d['feedback_files']} feedback clips train; "
            f"{d['heldback_feedback_files']} feedback clips held back and {d['fixed_files']} "
            f"files of the fixed pack ({', '.join(d['fixed_sources']) or 'none'}) evaluate"
        )


def sample_files(recordings: list[Recording], limit: int | None, seed: int) -> list[Recording]:
    """At most ``limit`` of ``recordings`` (seeded), half of them scream files as far as there
    are any (as ``train --limit-files``)."""
    if not limit or limit >= len(recordings):
        return list(recordings)
    rng = np.random.default_rng(seed)
    screams = [r for r in recordings if r.has_scream]
    others = [r for r in recordings if not r.has_scream]
    n_scream = min(len(screams), max(1, limit // 2)) if others else limit
    pick = [screams[i] for i in rng.permutation(len(screams))[:n_scream]]
    pick += [others[i] for i in rng.permutation(len(others))[: limit - len(pick)]]
    return sorted(pick, key=lambda r: r.rel)


def fixed_split(recordings: list[Recording], folds: int, seed: int = 0) -> np.ndarray:
    """Which of a pack's recordings form its fixed evaluation set: fold 0 of a grouped split by
    source (whole collections), scream collections spread over the folds first."""
    by_source = [replace(r, group=r.source) for r in recordings]
    k = min(folds, len({r.source for r in recordings}))
    if k < 2:
        raise RetrainError(
            "the fixed pack has a single source: it cannot be split into a fixed evaluation set"
            " and training data; give a fixed pack apart from the base packs"
        )
    return grouped_folds(by_source, k, seed) == 0


def heldback_mask(
    recordings: list[Recording], info: dict[str, FeedbackInfo], days: float
) -> np.ndarray:
    """For each feedback clip, whether it is within ``days`` of its site's newest verdict."""
    newest: dict[str, _dt.datetime] = {}
    for rec in recordings:
        row = info[rec.rel]
        newest[row.site] = max(newest.get(row.site, row.verdict_time), row.verdict_time)
    if days <= 0:
        return np.zeros(len(recordings), dtype=bool)
    span = _dt.timedelta(days=days)
    return np.array(
        [info[r.rel].verdict_time >= newest[info[r.rel].site] - span for r in recordings],
        dtype=bool,
    )


def read_feedback(root: str | os.PathLike) -> tuple[list[Recording], dict[str, FeedbackInfo]]:
    """The feedback clips of an export (``feedback_set.export_items``), named ``feedback/...``."""
    try:
        result = scan(root, prefix=FEEDBACK_PREFIX)
    except DatasetError as exc:
        raise RetrainError(f"feedback export: {exc}") from exc
    rows = read_feedback_manifest(root)
    info = {FEEDBACK_PREFIX + rel: row for rel, row in rows.items()}
    clips = [r for r in result.recordings if r.rel in info and r.source == SOURCE]
    return clips, info


def assemble(
    base_roots: list[str | os.PathLike],
    feedback_root: str | os.PathLike,
    fixed_root: str | os.PathLike,
    options: RetrainOptions,
) -> RetrainData:
    """Split the base packs, the feedback export and the fixed pack for one run (module doc)."""
    options.check()
    clips, info = read_feedback(feedback_root)
    if not clips:
        raise RetrainError(
            f"no feedback to retrain on: the export {feedback_root} holds no reviewed alert"
            " (confirm or dismiss alerts on the dashboard first)"
        )
    held = heldback_mask(clips, info, options.holdout_days)
    feedback = [r for r, h in zip(clips, held, strict=True) if not h]
    heldback = [r for r, h in zip(clips, held, strict=True) if h]
    if not feedback:
        raise RetrainError(
            f"no feedback to retrain on: all {len(clips)} reviewed alert(s) are within"
            f" {options.holdout_days:g} days of their site's newest verdict and held back for"
            " evaluation (give fewer holdout days; 0 trains on all of them)"
        )
    try:
        base_all = scan_roots(list(base_roots)).recordings if base_roots else []
        fixed_path = Path(fixed_root).resolve()
        fixed_pack = scan(fixed_path).recordings
    except DatasetError as exc:
        raise RetrainError(str(exc)) from exc
    if not fixed_pack:
        raise RetrainError(f"the fixed pack {fixed_root} holds no labelled recording")
    in_fixed = fixed_split(fixed_pack, options.fixed_folds, options.seed)
    fixed = [r for r, f in zip(fixed_pack, in_fixed, strict=True) if f]
    fixed_paths = {r.path.resolve() for r in fixed}
    fixed_sources = sorted({r.source for r in fixed})
    base = [
        r
        for r in base_all
        if r.path.resolve() not in fixed_paths and r.source not in set(fixed_sources)
    ]
    base = sample_files(base, options.max_files, options.seed)
    fixed = sample_files(fixed, options.max_eval_files, options.seed)
    data = RetrainData(base, feedback, heldback, fixed, info, fixed_sources)
    trained = base + feedback
    if not any(r.has_scream for r in trained):
        raise RetrainError(
            "no scream in the training data: give a base pack with screams"
            " (EYESCREAM_RETRAIN_BASE_PACKS / --base) or confirm alerts"
        )
    if all(r.has_scream for r in trained):
        raise RetrainError("no non-scream clip in the training data")
    return data


# --------------------------------------------------------------------------- fine-tuning


def hyper_of(config: dict, options: RetrainOptions) -> Hyper:
    """The network a model artifact serves, as training hyper-parameters."""
    params = dict(config.get("arch_params", {}))
    dropout = float(params.pop("dropout", 0.3))
    members = int(params.pop("members", 1))
    return Hyper(
        arch=config["architecture"],
        epochs=options.epochs,
        batch_size=options.batch_size,
        lr=options.learning_rate(),
        dropout=dropout,
        members=members,
        arch_params=params,
    )


def training_windows(
    data: RetrainData, store: FeatureStore, options: RetrainOptions, progress=None
) -> WindowSet:
    """Labelled windows of the base files and the training feedback (each feedback clip
    ``feedback_repeats`` times)."""
    recordings = data.base + data.feedback
    features = []
    for i, rec in enumerate(
        tqdm(recordings, desc="features", unit="file", leave=False, disable=not options.progress)
    ):
        features.append(store.features(rec))
        if progress is not None and (i % 25 == 0 or i == len(recordings) - 1):
            progress((i + 1) / len(recordings))
    feedback = features[len(data.base) :]
    items = features[: len(data.base)] + feedback * options.feedback_repeats
    cfg = store.cfg
    return WindowSet.build(items, cfg, cfg.stride_columns(options.train_stride_s), True)


def finetune(
    data: RetrainData,
    active_dir: str | os.PathLike,
    out: str | os.PathLike,
    options: RetrainOptions,
    cache_dir: str | os.PathLike | None = None,
    name: str | None = None,
    command: str = "",
    progress=None,
) -> Path:
    """Train the candidate on ``data`` and save it as an artifact folder at ``out``.

    ``progress(fraction, message)`` is called as the work goes (features, then training)."""
    import torch

    torch.set_num_threads(max(1, options.threads))
    began = time.monotonic()
    active_dir = Path(active_dir)
    config = read_model_config(active_dir)
    cfg_dict = config["features"]
    cfg = feature_config(config)
    hyper = hyper_of(config, options)
    store = FeatureStore(cfg, cache_dir=cache_dir)

    def step(share: float, message: str) -> None:
        if progress is not None:
            progress(share, message)

    step(0.0, "computing features")
    windows = training_windows(data, store, options, lambda f: step(0.3 * f, "computing features"))
    init = None
    if not options.from_scratch:
        init = torch.load(active_dir / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    step(0.3, f"training {hyper.members} network(s), {hyper.epochs} epoch(s)")
    net = train_network(
        windows,
        hyper,
        cfg,
        seed=options.seed * 1000 + 777,
        progress=options.progress,
        label="retrain",
        init_state=init,
    )
    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
    parent = weights_digest(active_dir)
    keep = {k: v for k, v in config.items() if k not in ("format", "training", "name", "created")}
    candidate = {
        **keep,
        "features": cfg_dict,
        "name": name or Path(out).name,
        "created": now,
        "threshold_source": (
            f"kept from the parent model {parent} ({config.get('threshold_source', '')})"
        ),
        "training": {
            "kind": "retrain",
            "command": command,
            "parent": parent,
            "from_scratch": options.from_scratch,
            "data": data.describe(),
            "options": asdict(options),
            "hyper": asdict(hyper),
            "date": now,
            "git_commit": git_commit(),
            "seconds": round(time.monotonic() - began, 1),
        },
    }
    step(1.0, "candidate trained")
    return save_artifact(out, net, candidate)
