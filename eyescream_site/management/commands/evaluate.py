"""``manage.py evaluate``: score a labelled folder with a model artifact and report it."""

from __future__ import annotations

import json

import numpy as np
from django.core.management.base import CommandError

from detection.alert_figures import alert_figures, alert_sweep, on_threshold_grid
from detection.artifacts import ArtifactError, load_model
from detection.dataset import FeatureStore, file_windows
from detection.evaluation import Scored, best_f1_threshold, by_input, device_copy_name, summarize
from detection.fusion import cascade
from detection.progress import tqdm
from detection.report import build_report, write_files
from detection.scoring import decision_defaults
from detection.second_stage_choice import yamnet_scores
from detection.source_validation import BY_SOURCE_NOTE, by_source_md, source_streams, source_table
from detection.training import _jsonable
from eyescream_site.management.batch_command import BatchCommand
from eyescream_site.management.commands.train import (
    add_data_argument,
    load_recordings,
    parse_eval_rates,
)


class Command(BatchCommand):
    help = (
        "Score every window of a labelled folder with a model artifact and report window-level, "
        "file-level and per-sub-label figures at the model's threshold (report.md + images)."
    )
    requires_system_checks = []  # no database needed

    def add_arguments(self, parser):
        add_data_argument(parser)
        parser.add_argument("--model", required=True, help="model artifact folder")
        parser.add_argument("--out", help="folder for report.md, images and metrics.json")
        parser.add_argument("--stride", type=float, help="window stride in s (default: model's)")
        parser.add_argument("--threshold", type=float, help="override the model's threshold")
        parser.add_argument(
            "--eval-rates",
            default="",
            metavar="HZ[,HZ]",
            help="also score each file as a device at these rates would stream it (e.g. 16000);"
            " the figures cover all, and are given for each input apart too",
        )
        parser.add_argument(
            "--by-source",
            action="store_true",
            help="also give the figures per source (the manifest's collection), with false alerts"
            " on a long 16 kHz stream of each source's non-scream recordings",
        )
        parser.add_argument("--limit-files", type=int, help="use only N files (quick runs)")
        parser.add_argument("--seed", type=int, default=0, help="for --limit-files")
        parser.add_argument("--threads", type=int, default=2)
        parser.add_argument("--cache-dir", help="feature cache (default var/cache/features)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        import torch

        torch.set_num_threads(max(1, opts["threads"]))
        rates = parse_eval_rates(opts.get("eval_rates", ""))
        recordings = load_recordings(opts["data"], opts.get("limit_files"), opts["seed"], self)
        try:
            model = load_model(opts["model"])
        except (ArtifactError, ValueError) as exc:
            raise CommandError(f"cannot load model: {exc}") from exc
        cfg = model.features
        stride_s = opts.get("stride") or model.stride_s
        threshold = opts["threshold"] if opts.get("threshold") is not None else model.threshold
        store = FeatureStore(cfg, cache_dir=opts.get("cache_dir"))
        stride = cfg.stride_columns(stride_s)
        # Each file as recorded (copy 0), then as each rate's device streams it (copy r: file k
        # is k + r * n), the copies ``train --eval-rates`` scores.
        scores, targets, subs, file_index = [], [], [], []
        jobs = [(c, i, rec) for c in range(1 + len(rates)) for i, rec in enumerate(recordings)]
        bar = tqdm(jobs, desc="score", unit="file", disable=opts["no_progress"])
        for copy, index, rec in bar:
            feats = store.at_rate(rec, rates[copy - 1]) if copy else store.features(rec)
            starts, t, sub = file_windows(feats, cfg, stride)
            if starts.size == 0:
                continue  # empty audio
            windows = np.stack([feats.columns[:, s : s + cfg.window_columns] for s in starts])
            scores.append(model.predict(windows))
            targets.append(t)
            subs.append(sub)
            file_index.append(np.full(starts.size, index + copy * len(recordings), np.int64))
        scored = Scored(
            scores=np.concatenate(scores),
            targets=np.concatenate(targets),
            sublabels=np.concatenate(subs),
            file_index=np.concatenate(file_index),
            file_truth=np.tile([r.has_scream for r in recordings], 1 + len(rates)),
            file_names=[r.rel for r in recordings]
            + [device_copy_name(r.rel, rate) for rate in rates for r in recordings],
        )
        if model.second_stage is not None:  # YAMNet on the windows the network flags
            flagged = model.second_stage.flagged(scored.scores)
            second = yamnet_scores(
                scored,
                recordings,
                model.second_stage,
                cfg,
                stride_s,
                progress=(lambda it, **_: it) if opts["no_progress"] else tqdm,
                only=flagged,
            )
            weight = model.second_stage.config.weight
            scored.scores = cascade(scored.scores, second, flagged, weight).astype(np.float64)
        summary = summarize(scored, threshold)
        # The model's live decision; --threshold moves its on threshold too.
        decision = decision_defaults(model.config)
        if opts.get("threshold") is not None:
            decision = decision.with_on_threshold(threshold)
        step_s = cfg.column_start_s(stride)
        summary["alerts"] = alert_figures(scored, decision, step_s, cfg.window_span_s())
        lab = scored.labelled
        if np.any(scored.targets[lab] == 1):
            best_t, best_f1 = best_f1_threshold(scored.targets[lab] == 1, scored.scores[lab])
            summary["best_f1_on_this_data"] = {"threshold": best_t, "f1": best_f1}
        w, f = summary["window"], summary["file"]
        also = "".join(f" + as a {rate} Hz device" for rate in rates)
        self.stdout.write(
            f"{len(recordings)} files{also}, {w['n']} labelled windows (stride {stride_s} s), "
            f"threshold {threshold:.4f}\n"
            f"windows: F1 {w['f1']:.3f} precision {w['precision']:.3f} recall {w['recall']:.3f} "
            f"accuracy {w['accuracy']:.3f} AUC {w['roc_auc']:.3f}\n"
            f"files:   F1 {f['f1']:.3f} precision {f['precision']:.3f} recall {f['recall']:.3f}\n"
            + "false-positive rate: "
            + ", ".join(
                f"{k} {v['fpr']:.3f} (n={v['n']})" for k, v in summary["fpr_by_sublabel"].items()
            )
            + "\nalerts (live decision, file by file): {false_alerts} false in "
            "{non_scream_hours:.3f} h of non-scream audio; {scream_files_alerted} of "
            "{scream_files} scream files alerted".format(**summary["alerts"])
        )
        inputs_figures = by_input(scored, threshold)
        if len(inputs_figures) > 1:
            for label, row in inputs_figures.items():
                g = row["file"]
                self.stdout.write(
                    f"{label}: windows F1 {row['window']['f1']:.3f}; files F1 {g['f1']:.3f}"
                    f" precision {g['precision']:.3f} recall {g['recall']:.3f}"
                )
        table = None
        if opts.get("by_source"):
            streams = source_streams(
                recordings,
                np.arange(len(recordings)),
                store.audio,
                cfg,
                stride,
                model.predict,
                not opts["no_progress"],
                second_stage=model.second_stage,
            )
            table = source_table(
                scored,
                recordings,
                None,
                threshold,
                streams,
                lambda s: alert_figures(s, decision, step_s, cfg.window_span_s()),
            )
            md = by_source_md(
                table["sources"], table["pooled"], table["mean"], table["stream_alerts"]
            )
            self.stdout.write("\nper source:\n" + md)
        if opts.get("out"):
            # Other live operating points on this data (the model's decision shape).
            sweep = alert_sweep(
                scored,
                decision,
                step_s,
                cfg.window_span_s(),
                np.union1d(on_threshold_grid(), [decision.on_threshold]),
                off_ratio=decision.off_threshold / decision.on_threshold,
            )
            intro = [
                f"Model `{model.config.get('name', model.path.name)}` (weights {model.version}, "
                f"architecture {model.config['architecture']}) on {len(recordings)} files of "
                f"`{', '.join(opts['data'])}`{also}, window stride {stride_s} s.",
            ]
            if table:
                intro += [
                    "",
                    "## Per source",
                    "",
                    by_source_md(
                        table["sources"], table["pooled"], table["mean"], table["stream_alerts"]
                    )
                    + BY_SOURCE_NOTE,
                ]
            if "best_f1_on_this_data" in summary:
                b = summary["best_f1_on_this_data"]
                intro.append(
                    f"\nFor reference only (chosen on this data, not a fair figure): the best F1 "
                    f"here would be {b['f1']:.3f} at threshold {b['threshold']:.4f}."
                )
            files = build_report(
                f"Evaluation: {', '.join(opts['data'])}",
                scored,
                threshold,
                summary,
                intro=intro,
                alert_sweep=sweep,
                sweep_chosen_here=False,
                by_input=inputs_figures,
            )
            metrics = {
                **({"by_source": table} if table else {}),
                "model": str(model.path),
                "model_version": model.version,
                "data_dir": ", ".join(opts["data"]),
                "n_files": len(recordings),
                "stride_s": stride_s,
                "eval_rates": list(rates),
                **summary,
                "by_input": inputs_figures,
                "alert_sweep": sweep,
                "files": [
                    {"file": name, "scream": bool(truth), "max_score": float(top)}
                    for name, truth, top in zip(
                        scored.file_names, scored.file_truth, _file_max(scored), strict=True
                    )
                ],
            }
            files["metrics.json"] = json.dumps(_jsonable(metrics), indent=2, sort_keys=True) + "\n"
            write_files(opts["out"], files)
            self.stdout.write(self.style.SUCCESS(f"report written to {opts['out']}"))


def _file_max(scored: Scored) -> np.ndarray:
    top = np.zeros(len(scored.file_names))
    np.maximum.at(top, scored.file_index, scored.scores)
    return top
