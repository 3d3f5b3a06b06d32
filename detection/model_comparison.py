"""Two models on the same held-back data: the figures of each, and the report of the pair.

``score_recordings`` scores every window of a list of recordings as ``manage.py evaluate``
does (the network, then the second stage on the windows it flags). ``figures`` turns those
scores into what a retraining run compares: window and file figures at the model's threshold,
the live decision's false alerts per hour of non-scream audio, and -- for feedback clips --
the same per site and per verdict reason. ``compare`` does it for the active model and the
candidate on the fixed pack and on the held-back feedback; ``comparison_report`` writes
``report.md`` with confusion matrices and precision-recall curves beside it.

Pure: no Django.
"""

from __future__ import annotations

import numpy as np

from .alert_figures import alert_figures
from .artifacts import LoadedModel
from .dataset import FeatureStore, Recording, file_windows
from .evaluation import Scored, summarize
from .feedback_set import FeedbackInfo
from .fusion import cascade
from .progress import tqdm
from .report import _table, metrics_table
from .report_plots import confusion_png, pr_png
from .scoring import decision_defaults
from .second_stage_choice import yamnet_scores

REASONS = {"1": "confirmed", "0_0": "human sound", "0_1": "high-pitched", "0_2": "other"}


def score_recordings(
    model: LoadedModel, recordings: list[Recording], store: FeatureStore, progress: bool = False
) -> Scored | None:
    """Every window of ``recordings`` scored by ``model`` at its stride (None: no windows)."""
    cfg = model.features
    stride = cfg.stride_columns(model.stride_s)
    scores, targets, subs, index = [], [], [], []
    for i, rec in enumerate(
        tqdm(recordings, desc="score", unit="file", leave=False, disable=not progress)
    ):
        feats = store.features(rec)
        starts, t, sub = file_windows(feats, cfg, stride)
        if starts.size == 0:
            continue
        windows = np.stack([feats.columns[:, s : s + cfg.window_columns] for s in starts])
        scores.append(model.predict(windows))
        targets.append(t)
        subs.append(sub)
        index.append(np.full(starts.size, i, np.int64))
    if not scores:
        return None
    scored = Scored(
        scores=np.concatenate(scores).astype(np.float64),
        targets=np.concatenate(targets),
        sublabels=np.concatenate(subs),
        file_index=np.concatenate(index),
        file_truth=np.array([r.has_scream for r in recordings], dtype=bool),
        file_names=[r.rel for r in recordings],
    )
    if model.second_stage is not None:
        flagged = model.second_stage.flagged(scored.scores)
        second = yamnet_scores(
            scored, recordings, model.second_stage, cfg, model.stride_s, only=flagged
        )
        weight = model.second_stage.config.weight
        scored.scores = cascade(scored.scores, second, flagged, weight).astype(np.float64)
    return scored


def _alerts(model: LoadedModel, scored: Scored) -> dict:
    cfg = model.features
    step_s = cfg.column_start_s(cfg.stride_columns(model.stride_s))
    return alert_figures(scored, decision_defaults(model.config), step_s, cfg.window_span_s())


def _files_where(recordings: list[Recording], keep) -> np.ndarray:
    return np.array([i for i, r in enumerate(recordings) if keep(r)], dtype=np.int64)


def figures(
    model: LoadedModel,
    scored: Scored | None,
    recordings: list[Recording],
    info: dict[str, FeedbackInfo] | None = None,
) -> dict:
    """Window, file and live-alert figures of one model on one set (with ``info``: per site
    and per verdict reason too)."""
    if scored is None:
        return {"files": 0}
    out = {
        "files": len(recordings),
        **summarize(scored, model.threshold),
        "alerts": _alerts(model, scored),
    }
    if info:
        by_site, by_reason = {}, {}
        for site in sorted({info[r.rel].site for r in recordings}):
            files = _files_where(recordings, lambda r, s=site: info[r.rel].site == s)
            by_site[site] = {"files": int(files.size), **_alerts(model, scored.subset(files))}
        for reason in sorted({info[r.rel].verdict for r in recordings}):
            files = _files_where(recordings, lambda r, v=reason: info[r.rel].verdict == v)
            by_reason[reason] = {"files": int(files.size), **_alerts(model, scored.subset(files))}
        out["by_site"] = by_site
        out["by_reason"] = by_reason
    return out


def compare(
    active: LoadedModel,
    candidate: LoadedModel,
    sets: dict[str, tuple[list[Recording], dict | None]],
    store: FeatureStore,
    progress: bool = False,
    step=None,
) -> tuple[dict, dict[str, dict[str, Scored | None]]]:
    """Figures of both models on each named set (``{"fixed_pack": (recordings, None),
    "feedback": (clips, info)}``); returns them and the scores behind them."""
    results: dict = {}
    scores: dict = {}
    jobs = [(name, role) for name in sets for role in ("active", "candidate")]
    for n, (name, role) in enumerate(jobs):
        model = active if role == "active" else candidate
        recordings, info = sets[name]
        if step is not None:
            step(n / len(jobs), f"scoring the {name.replace('_', ' ')} with the {role} model")
        scored = score_recordings(model, recordings, store, progress) if recordings else None
        results.setdefault(name, {})[role] = figures(model, scored, recordings, info)
        scores.setdefault(name, {})[role] = scored
    return results, scores


def _recall(fig: dict) -> float | None:
    return fig["file"]["recall"] if fig.get("files") and fig["file"]["n_scream"] else None


def _false_per_hour(fig: dict) -> float | None:
    return fig["alerts"]["false_alerts_per_hour"] if fig.get("files") else None


def verdict(results: dict) -> dict:
    """The changes that matter for promotion: scream-file recall on the fixed pack, false
    alerts (count and per hour) on the held-back feedback and on the fixed pack."""
    out = {}
    for name, pair in results.items():
        a, c = pair["active"], pair["candidate"]
        if not a.get("files"):
            continue
        out[name] = {
            "recall": {"active": _recall(a), "candidate": _recall(c)},
            "false_alerts": {
                "active": a["alerts"]["false_alerts"],
                "candidate": c["alerts"]["false_alerts"],
            },
            "false_alerts_per_hour": {
                "active": _false_per_hour(a),
                "candidate": _false_per_hour(c),
            },
        }
    return out


def promotion_rule(changes: dict, recall_tolerance: float) -> tuple[bool, str]:
    """The automatic promotion rule on a retraining run's ``changes`` (``verdict``): promote only
    when the candidate's scream-file recall on the fixed pack is not lower than the active
    model's by more than ``recall_tolerance``, and it raises fewer false alerts on the held-back
    feedback. ``(promote, the reason in words)``."""
    fixed, feedback = changes.get("fixed_pack"), changes.get("feedback")
    if not fixed or fixed["recall"]["active"] is None or fixed["recall"]["candidate"] is None:
        return False, "not promoted: the fixed pack has no scream file to measure recall on"
    if not feedback:
        return False, "not promoted: no held-back feedback to count false alerts on"
    before, after = fixed["recall"]["active"], fixed["recall"]["candidate"]
    if after < before - recall_tolerance:
        return False, (
            f"not promoted: fixed-pack recall {before:.3f} -> {after:.3f} loses more than"
            f" {recall_tolerance:g}"
        )
    fa_before, fa_after = feedback["false_alerts"]["active"], feedback["false_alerts"]["candidate"]
    if fa_after >= fa_before:
        return False, (
            f"not promoted: false alerts on the held-back feedback {fa_before} -> {fa_after}"
            " (must go down)"
        )
    return True, (
        f"promoted: fixed-pack recall {before:.3f} -> {after:.3f} (tolerance {recall_tolerance:g}),"
        f" false alerts on the held-back feedback {fa_before} -> {fa_after}"
    )


def _alerts_row(label: str, fig: dict) -> list:
    if not fig.get("files"):
        return [label, 0, "-", "-", "-", "-", "-"]
    a, f = fig["alerts"], fig["file"]
    return [
        label,
        fig["files"],
        f["recall"] if f["n_scream"] else "-",
        f["precision"],
        a["false_alerts"],
        a["non_scream_hours"],
        a["false_alerts_per_hour"] if a["false_alerts_per_hour"] is not None else "-",
    ]


def comparison_report(
    title: str,
    intro: list[str],
    results: dict,
    scores: dict,
    thresholds: dict[str, float],
) -> dict[str, bytes | str]:
    """``report.md`` and its figures for a candidate against the active model."""
    files: dict[str, bytes | str] = {}
    md = [f"# {title}\n\n", *(f"{line}\n" for line in intro)]
    header = [
        "model",
        "files",
        "scream-file recall",
        "file precision",
        "false alerts",
        "non-scream hours",
        "false alerts / h",
    ]
    names = {"fixed_pack": "Fixed pack", "feedback": "Held-back feedback"}
    for name, pair in results.items():
        md.append(f"\n## {names.get(name, name)}\n\n")
        if not pair["active"].get("files"):
            md.append("No files in this set: nothing to compare.\n")
            continue
        md.append(_table(header, [_alerts_row(role, pair[role]) for role in pair]))
        md.append("\nWindows and files at each model's threshold:\n\n")
        md.append(
            metrics_table(
                {f"{role} {kind}": pair[role][kind] for role in pair for kind in ("window", "file")}
            )
        )
        for part, label in (("by_site", "site"), ("by_reason", "verdict")):
            if part not in pair["candidate"]:
                continue
            md.append(f"\nLive alerts per {label} (active / candidate):\n\n")
            rows = []
            for key, row in pair["candidate"][part].items():
                old = pair["active"][part][key]
                rows.append(
                    [
                        REASONS.get(key, key) if label == "verdict" else key,
                        row["files"],
                        f"{old['false_alerts']} / {row['false_alerts']}",
                        f"{old['false_alerts_per_hour']} / {row['false_alerts_per_hour']}",
                        f"{old['scream_files_alerted']} / {row['scream_files_alerted']}"
                        f" of {row['scream_files']}",
                    ]
                )
            md.append(
                _table([label, "files", "false alerts", "per hour", "scream files alerted"], rows)
            )
        for role in pair:
            scored = scores[name][role]
            if scored is None:
                continue
            stem = f"{name}_{role}"
            files[f"confusion_{stem}.png"] = confusion_png(
                pair[role]["window"], f"{role}: {names.get(name, name)} (windows)"
            )
            md.append(f"\n![{role} confusion matrix, {name}](confusion_{stem}.png)\n")
            lab = scored.labelled
            y = scored.targets[lab] == 1
            if y.any() and (~y).any():
                files[f"pr_{stem}.png"] = pr_png(
                    y, scored.scores[lab], thresholds[role], f"{role}: precision-recall"
                )
                md.append(f"![{role} precision-recall, {name}](pr_{stem}.png)\n")
    files["report.md"] = "".join(md)
    return files
