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
import json
import math
import subprocess
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .corpus import Corpus, augment_config, data_counts
from .cross_validation import CVResult, cross_validate
from .dataset import (
    FeatureStore,
    Recording,
)
from .decision_choice import decision_defaults
from .folds import validation_folds
from .report import build_report
from .search import SEARCHED, random_search
from .source_validation import (
    BY_SOURCE_NOTE,
    by_source_md,
)
from .train_loop import train_network
from .training_plan import Hyper, Plan, TrainingError


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
        from .report import write_files

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
