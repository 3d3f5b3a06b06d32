"""Choosing the second stage out of source: YAMNet's score on every out-of-fold window, fused.

A training run's ``out_of_fold.npz`` holds the network's score of every window of every held-out
file (each file scored by a network that never heard it; by one that never heard its source
under ``--validation loso``). ``yamnet_scores`` adds YAMNet's 'Screaming' score of the same
windows (YAMNet was trained on AudioSet, never on these files, so it is out of source anyway).
``compare`` fuses them at each candidate weight, chooses the threshold (file F1 maximum) and the
live decision on the fused out-of-fold scores exactly as ``train`` does for the network alone,
and reports both side by side; the weight with the best file F1 wins. Its gate is then raised as
far as the same out-of-source figures allow (``raise_gate``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from .dataset import Recording
from .decision_choice import choose_decision, out_of_fold_alerts
from .evaluation import (
    Scored,
    average_precision,
    best_f1_threshold,
    file_top_scores,
    input_of,
    summarize,
)
from .features import FeatureConfig, resampler_delay_s, to_mono
from .fusion import SecondStageConfig, cascade, gate_for
from .second_stage import SecondStage

WEIGHTS = (0.3, 0.5, 0.7)
F1_TOLERANCE = 0.01
# Gates tried above the exact one (``raise_gate``).
GATES = (0.7, 0.75, 0.8, 0.85, 0.9, 0.92, 0.94, 0.96, 0.98)


def read_audio(path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    audio, rate = sf.read(str(path), dtype="float32", always_2d=False)
    return to_mono(audio), int(rate)


def window_starts_s(scored: Scored, cfg: FeatureConfig, stride_s: float) -> np.ndarray:
    """Start time of every window within its file: windows of a file are in order, one stride
    apart from 0 (``features.window_starts``)."""
    stride = cfg.stride_columns(stride_s)
    starts = np.empty(scored.file_index.size, dtype=np.float64)
    for f in np.unique(scored.file_index):
        where = np.flatnonzero(scored.file_index == f)
        starts[where] = cfg.column_start_s(np.arange(where.size) * stride)
    return starts


def yamnet_scores(
    scored: Scored,
    recordings: list[Recording],
    stage: SecondStage,
    cfg: FeatureConfig,
    stride_s: float,
    progress: Callable = lambda it, **_: it,
    only: np.ndarray | None = None,
) -> np.ndarray:
    """YAMNet's 'Screaming' score of every window of ``scored`` (of the windows where ``only``
    is true, 0 elsewhere); file ``i`` is ``recordings[i % len(recordings)]`` (device-rate copies
    follow the originals). YAMNet hears every copy from the file as recorded, so a recording's
    copies share their scores."""
    n = len(recordings)
    for i, name in enumerate(scored.file_names[:n]):
        if name != recordings[i].rel and not name.endswith("/" + recordings[i].rel):
            raise ValueError(f"scored file {name!r} is not recording {recordings[i].rel!r}")
    starts = window_starts_s(scored, cfg, stride_s)
    span = cfg.window_span_s()
    out = np.zeros(scored.file_index.size, dtype=np.float32)
    by_recording: dict[int, np.ndarray] = {}
    wanted = np.ones(scored.file_index.size, bool) if only is None else np.asarray(only, bool)
    for f in progress(range(len(scored.file_names)), desc="YAMNet", unit="file"):
        where = np.flatnonzero(scored.file_index == f)
        if where.size == 0:
            continue
        rec = f % n
        if only is not None:  # the windows flagged in this copy, heard from the file itself
            where = where[wanted[where]]
            if where.size:
                audio, rate = read_audio(recordings[rec].path)
                delay = resampler_delay_s(rate, cfg.sample_rate)
                out[where] = stage.scream_scores(audio, rate, starts[where], span, delay)
            continue
        if rec not in by_recording or input_of(scored.file_names[f]) == "as recorded":
            audio, rate = read_audio(recordings[rec].path)
            delay = resampler_delay_s(rate, cfg.sample_rate)  # the windows' time is the stream's
            by_recording[rec] = stage.scream_scores(audio, rate, starts[where], span, delay)
        out[where] = by_recording[rec]
    return out


def fused_scored(scored: Scored, second: np.ndarray, config: SecondStageConfig) -> Scored:
    """``scored`` with the cascade's scores: fused above the gate, the network's share below."""
    flagged = scored.scores >= config.gate
    return replace(scored, scores=cascade(scored.scores, second, flagged, config.weight))


def _figures(scored: Scored, threshold: float, cfg, stride_s: float, decision: dict) -> dict:
    top = file_top_scores(scored.file_index, scored.scores, scored.file_truth.size)
    seen = np.isfinite(top)
    summary = summarize(scored, threshold)
    return {
        "threshold": float(threshold),
        "file": summary["file"],
        "file_average_precision": average_precision(scored.file_truth[seen], top[seen]),
        "fpr_by_sublabel": summary["fpr_by_sublabel"],
        "decision": decision,
        "alerts": out_of_fold_alerts(scored, threshold, cfg, stride_s, decision),
    }


def choose(
    scored: Scored, second: np.ndarray, weight: float, cfg: FeatureConfig, stride_s: float
) -> dict:
    """Threshold, decision and gate for one weight, and the cascade's out-of-fold figures."""
    full = fused_scored(scored, second, SecondStageConfig(weight=weight, gate=0.0))
    top = file_top_scores(full.file_index, full.scores, full.file_truth.size)
    seen = np.isfinite(top)
    threshold, _ = best_f1_threshold(full.file_truth[seen], top[seen])
    decision = choose_decision(full, threshold, cfg, stride_s).decision
    # Below the gate no window can open an incident or reach the offline threshold; an open
    # incident's off threshold sees the cascade's scores (it may close a little sooner).
    lowest = min(threshold, decision["on_threshold"])
    config = SecondStageConfig(weight=weight, gate=gate_for(lowest, weight))
    cascaded = fused_scored(scored, second, config)
    return {
        "second_stage": config.to_dict(),
        "flagged_window_share": float(np.mean(scored.scores >= config.gate)),
        **_figures(cascaded, threshold, cfg, stride_s, decision),
    }


def _gate_entry(gate: float, row: dict, exact: bool = False) -> dict:
    alerts = row["alerts"]
    return {
        "gate": float(gate),
        "exact": exact,
        "flagged_window_share": row["flagged_window_share"],
        "file_f1": row["file"]["f1"],
        "false_alerts": alerts["false_alerts"],
        "false_alerts_per_hour": alerts["false_alerts_per_hour"],
        "scream_files_alerted": alerts["scream_files_alerted"],
    }


def raise_gate(
    scored: Scored,
    second: np.ndarray,
    row: dict,
    cfg: FeatureConfig,
    stride_s: float,
    gates: tuple[float, ...] = GATES,
    tolerance: float = F1_TOLERANCE,
) -> dict:
    """``row`` (a weight's ``choose``) with its gate raised through ``gates`` while the cascade,
    at the row's threshold and live decision, stays no worse out of source: no fewer scream
    files alerted, no more false alerts, file F1 within ``tolerance``. It stops at the first
    gate that is worse.

    The exact gate (``gate_for``) lets YAMNet hear every window that could reach the threshold
    with its help. Out of source, what YAMNet lifts over the threshold from a network score well
    below 1 is mostly a false alert, and windows the network puts near 1 carry the screams: a
    higher gate sends fewer windows to YAMNet (its cost) and loses nothing. ``gate_sweep`` holds
    every gate tried."""
    weight = row["second_stage"]["weight"]
    exact = row["second_stage"]["gate"]
    sweep = [_gate_entry(exact, row, exact=True)]
    best = row
    for gate in sorted(g for g in gates if g > exact):
        config = SecondStageConfig(weight=weight, gate=gate)
        candidate = {
            "second_stage": config.to_dict(),
            "flagged_window_share": float(np.mean(scored.scores >= gate)),
            **_figures(
                fused_scored(scored, second, config),
                row["threshold"],
                cfg,
                stride_s,
                row["decision"],
            ),
        }
        sweep.append(_gate_entry(gate, candidate))
        if not no_worse(candidate, row, tolerance):
            break
        best = candidate
    return {**best, "exact_gate": exact, "gate_sweep": sweep, "inexact": row.get("inexact", False)}


def no_worse(candidate: dict, row: dict, tolerance: float = F1_TOLERANCE) -> bool:
    """The candidate's out-of-source figures are no worse than the row's (``raise_gate``)."""
    mine, theirs = candidate["alerts"], row["alerts"]
    return (
        mine["scream_files_alerted"] >= theirs["scream_files_alerted"]
        and mine["false_alerts"] <= theirs["false_alerts"]
        and candidate["file"]["f1"] >= row["file"]["f1"] - tolerance
    )


def network_alone(scored: Scored, cfg: FeatureConfig, stride_s: float) -> dict:
    top = file_top_scores(scored.file_index, scored.scores, scored.file_truth.size)
    seen = np.isfinite(top)
    threshold, _ = best_f1_threshold(scored.file_truth[seen], top[seen])
    decision = choose_decision(scored, threshold, cfg, stride_s).decision
    return _figures(scored, threshold, cfg, stride_s, decision)


def yamnet_alone(scored: Scored, second: np.ndarray, cfg, stride_s: float) -> dict:
    return network_alone(replace(scored, scores=second.astype(np.float64)), cfg, stride_s)


def compare(
    scored: Scored,
    second: np.ndarray,
    cfg: FeatureConfig,
    stride_s: float,
    weights: tuple[float, ...] = WEIGHTS,
    tolerance: float = F1_TOLERANCE,
    floor: float = 0.0,
    gates: tuple[float, ...] = GATES,
) -> dict:
    """The network alone, YAMNet alone and the cascade at each weight. ``best`` is, of the
    weights whose out-of-fold file F1 is within ``tolerance`` of the highest, the one that sends
    the fewest windows to YAMNet (smaller differences are noise on a few hundred scream files;
    YAMNet costs about 15 times the network per window).

    ``floor``: YAMNet scored only the windows the network scores at or above it (``second`` is 0
    elsewhere). A weight's row is exact when its chosen gate is at or above the floor (no window
    below the floor can reach its threshold, whatever YAMNet says); a row whose gate is below is
    marked ``inexact`` and is not chosen while an exact row exists. YAMNet alone is then not
    measured.

    The best weight's gate is then raised through ``gates`` (``raise_gate``; none: kept)."""
    rows = {f"fused {w:g}": choose(scored, second, w, cfg, stride_s) for w in weights}
    for row in rows.values():
        row["inexact"] = bool(row["second_stage"]["gate"] < floor)
    exact = {k: r for k, r in rows.items() if not r["inexact"]} or rows
    top = max(row["file"]["f1"] for row in exact.values())
    close = [k for k in exact if exact[k]["file"]["f1"] >= top - tolerance]
    best = min(close, key=lambda k: (rows[k]["flagged_window_share"], -rows[k]["file"]["f1"]))
    if gates:
        rows[best] = raise_gate(scored, second, rows[best], cfg, stride_s, gates, tolerance)
    alone = {} if floor > 0 else {"yamnet": yamnet_alone(scored, second, cfg, stride_s)}
    return {"network": network_alone(scored, cfg, stride_s), **alone, **rows, "best": best}


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def comparison_md(result: dict) -> str:
    """The comparison as a Markdown table (one row per scorer)."""
    header = (
        "| scorer | threshold | file F1 | precision | recall | file ROC AUC | file AP "
        "| negatives flagged 0_0 / 0_1 / 0_2 | live decision: false alerts / h in held-out "
        "files, scream files alerted | windows sent to YAMNet |"
    )
    lines = [header, "|" + "---|" * 10]
    for name, row in result.items():
        if name == "best":
            continue
        f = row["file"]
        fpr = row["fpr_by_sublabel"]
        flagged = " / ".join(_fmt(fpr.get(k, {}).get("fpr")) for k in ("0_0", "0_1", "0_2"))
        alerts = row["alerts"]
        share = row.get("flagged_window_share")
        label = f"**{name}**" if name == result["best"] else name
        if "exact_gate" in row:
            label += f", gate {row['second_stage']['gate']:g}"
        label += " (inexact: gate below the YAMNet floor)" if row.get("inexact") else ""
        lines.append(
            f"| {label} | {_fmt(row['threshold'], 4)} | {_fmt(f['f1'])} | {_fmt(f['precision'])}"
            f" | {_fmt(f['recall'])} | {_fmt(f['roc_auc'])} | {_fmt(row['file_average_precision'])}"
            f" | {flagged} | {_fmt(alerts.get('false_alerts_per_hour'), 1)},"
            f" {alerts.get('scream_files_alerted')} of {alerts.get('scream_files')}"
            f" | {'all' if share is None else f'{share:.1%}'} |"
        )
    best = result.get(result.get("best"), {})
    if best.get("gate_sweep"):
        lines += ["", gate_sweep_md(best)]
    return "\n".join(lines) + "\n"


def gate_sweep_md(row: dict) -> str:
    """The gates ``raise_gate`` tried, at the row's threshold and live decision."""
    lines = [
        "| gate | windows sent to YAMNet | file F1 | false alerts (/ h) | scream files alerted |",
        "|---|---|---|---|---|",
    ]
    chosen = row["second_stage"]["gate"]
    for entry in row["gate_sweep"]:
        gate = f"{entry['gate']:.4f}" + (" (exact)" if entry["exact"] else "")
        gate = f"**{gate}**" if entry["gate"] == chosen else gate
        lines.append(
            f"| {gate} | {entry['flagged_window_share']:.1%} | {entry['file_f1']:.3f}"
            f" | {entry['false_alerts']} ({entry['false_alerts_per_hour']:.2f})"
            f" | {entry['scream_files_alerted']} |"
        )
    return "\n".join(lines)


def run_config(run: Path, fallback: Path | None = None) -> tuple[FeatureConfig, float]:
    """The feature parameters and evaluation stride of a training run's ``config.json``; a
    cross-validation-only run writes none, and ``fallback`` (a model of the same recipe) says."""
    import json

    path = run / "config.json"
    if not path.is_file() and fallback is not None:
        path = fallback / "config.json"
    config = json.loads(path.read_text())
    return FeatureConfig.from_dict(config["features"]), float(config["stride_s"])


def saved_choice(model_dir: Path) -> tuple[Scored, np.ndarray, float]:
    """The out-of-source scores a model's second stage was chosen on, as committed beside it:
    the network's (``second_stage/loso_out_of_fold.npz``, else the model's own
    ``out_of_fold.npz`` when its training run held out whole sources), YAMNet's
    (``second_stage/yamnet_window_scores.npz``) and the network score below which YAMNet was
    not run (0: every window)."""
    model_dir = Path(model_dir)
    folder = model_dir / "second_stage"
    network = folder / "loso_out_of_fold.npz"
    scored = Scored.from_npz(network if network.is_file() else model_dir / "out_of_fold.npz")
    with np.load(folder / "yamnet_window_scores.npz") as saved:
        second, index = saved["scores"], saved["file_index"]
        floor = float(saved["floor"]) if "floor" in saved.files else 0.0
    if not np.array_equal(index, scored.file_index):
        raise ValueError(f"{folder}: YAMNet's scores are not of the network's windows")
    return scored, second, floor
