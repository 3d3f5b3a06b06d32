"""One retraining run from start to candidate: assemble, fine-tune, compare, report.

``run_retrain`` writes ``<work>/candidate`` (the artifact, with ``metrics.json``) and
``<work>/report`` (``report.md`` and its figures) and returns what the registry needs to
register the candidate. ``progress(fraction, message)`` follows the run (0..1). Pure: no Django.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .artifacts import METRICS_FILE, load_model
from .dataset import FeatureStore
from .model_comparison import compare, comparison_report, verdict
from .report import write_files
from .retraining import RetrainData, RetrainOptions, assemble, finetune
from .training import _jsonable

# Shares of the run's progress bar (assemble, fine-tune, compare; the rest is registering).
ASSEMBLE, TRAIN, COMPARE = 0.05, 0.65, 0.95


@dataclass
class RetrainOutcome:
    candidate_dir: Path
    report_dir: Path
    metrics: dict
    data: RetrainData
    description: str
    seconds: float


def run_retrain(
    *,
    base_roots: list[str | os.PathLike],
    feedback_root: str | os.PathLike,
    fixed_root: str | os.PathLike,
    active_dir: str | os.PathLike,
    work: str | os.PathLike,
    options: RetrainOptions,
    cache_dir: str | os.PathLike | None = None,
    name: str = "candidate",
    command: str = "",
    progress=None,
    log=print,
) -> RetrainOutcome:
    """Retrain on the feedback export at ``feedback_root`` (``RetrainError`` says why not)."""
    began = time.monotonic()
    work = Path(work)

    def step(share: float, message: str) -> None:
        if progress is not None:
            progress(min(max(share, 0.0), 1.0), message)

    step(0.0, "reading the feedback and the packs")
    data = assemble(base_roots, feedback_root, fixed_root, options)
    log(data.words())
    step(ASSEMBLE, data.words())
    candidate_dir = finetune(
        data,
        active_dir,
        work / "candidate",
        options,
        cache_dir=cache_dir,
        name=name,
        command=command,
        progress=lambda f, m: step(ASSEMBLE + (TRAIN - ASSEMBLE) * f, m),
    )
    active = load_model(active_dir)
    candidate = load_model(candidate_dir)
    store = FeatureStore(active.features, cache_dir=cache_dir)
    results, scores = compare(
        active,
        candidate,
        {
            "fixed_pack": (data.fixed, None),
            "feedback": (data.heldback, data.info),
        },
        store,
        progress=options.progress,
        step=lambda f, m: step(TRAIN + (COMPARE - TRAIN) * f, m),
    )
    changes = verdict(results)
    metrics = _jsonable(
        {
            "fixed_pack": results["fixed_pack"]["candidate"],
            "feedback": results["feedback"]["candidate"],
            "active_on_same_data": {
                "version": active.version,
                "fixed_pack": results["fixed_pack"]["active"],
                "feedback": results["feedback"]["active"],
            },
            "changes": changes,
            "data": data.describe(),
            "seconds": round(time.monotonic() - began, 1),
        }
    )
    (candidate_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    intro = [
        f"Candidate `{name}` (weights {candidate.version}), "
        + ("trained from scratch" if options.from_scratch else "fine-tuned")
        + f" from the active model {active.version} for {options.epochs} epoch(s):"
        f" {data.words()}.",
        "",
        "Both models are scored on the same files, each at its own threshold and live"
        " decision. Held-back feedback: for each site, the reviewed alerts within"
        f" {options.holdout_days:g} days of its newest verdict, kept out of training. Fixed"
        " pack: whole sources of the fixed pack, kept out of training.",
    ]
    files = comparison_report(
        f"Retraining report: {name}",
        intro,
        results,
        scores,
        {"active": active.threshold, "candidate": candidate.threshold},
    )
    report_dir = work / "report"
    write_files(report_dir, files)
    step(COMPARE, "candidate evaluated")
    return RetrainOutcome(
        candidate_dir=candidate_dir,
        report_dir=report_dir,
        metrics=metrics,
        data=data,
        description=data.words(),
        seconds=time.monotonic() - began,
    )


def change_words(metrics: dict) -> str:
    """One line per set: recall and false alerts, active -> candidate."""
    lines = []
    for name, c in metrics.get("changes", {}).items():
        r, fa = c["recall"], c["false_alerts"]
        recall = (
            f"scream-file recall {r['active']:.3f} -> {r['candidate']:.3f}, "
            if r["active"] is not None
            else ""
        )
        lines.append(
            f"{name.replace('_', ' ')}: {recall}false alerts {fa['active']} -> {fa['candidate']}"
        )
    return "\n".join(lines) or "no held-back data to compare on"
