"""``manage.py second_stage``: choose YAMNet's second stage on a run's out-of-source scores.

    python manage.py second_stage --run RUN --data ROOT [--data ROOT...] [--weights 0.3,0.5,0.7]
        [--yamnet-floor F] [--out DIR] [--apply MODEL_DIR]

``RUN`` is a training run folder (``config.json`` and ``out_of_fold.npz``; use one trained with
``--validation loso`` so that every score is out of source) on the same ``--data``. YAMNet scores
every window, the network's and YAMNet's scores are fused at each weight, and threshold, live
decision and gate are chosen on the fused out-of-fold scores (``detection.second_stage_choice``).
``--yamnet-floor F`` scores with YAMNet only the windows the network scores at or above ``F`` (for
runs with hours of packs, where YAMNet on every window would take hours); a weight whose chosen
gate falls below ``F`` is reported as inexact and not chosen. The best weight's gate is then
raised through ``--gates`` while the out-of-source figures stay no worse (``raise_gate``;
``--gates none`` keeps the exact gate). YAMNet's scores are saved beside the tables and reused
by a later run over the same windows; the recordings under ``--data`` are read only when YAMNet
must score.
``second_stage.md`` and ``second_stage.json`` go to ``--out`` (default: the run folder).
``--apply`` writes the best weight's second stage, threshold and decision into a model
artifact's ``config.json`` (the network's own threshold and decision are kept beside them).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from django.core.management.base import CommandError

from detection.artifact_config import CONFIG_FILE, ArtifactError, read_model_config
from detection.evaluation import Scored
from detection.fusion import SecondStageConfig
from detection.progress import tqdm
from detection.second_stage import SecondStage
from detection.second_stage_choice import (
    GATES,
    compare,
    comparison_md,
    run_config,
    yamnet_scores,
)
from detection.training import _jsonable
from detection.yamnet_weights import load_yamnet
from eyescream_site.management.batch_command import BatchCommand
from eyescream_site.management.commands.train import add_data_argument, load_recordings

SCORES_FILE = "yamnet_window_scores.npz"


def network_digest(scores: np.ndarray) -> str:
    """What names the network scores a floored YAMNet run chose its windows by."""
    return hashlib.sha256(np.asarray(scores, np.float32).tobytes()).hexdigest()


def reuse_scores(path: Path, scored: Scored, floor: float = 0.0) -> np.ndarray | None:
    """YAMNet's window scores saved by an earlier run over the same files and windows (in
    whatever order its windows were), or None; scores saved with a YAMNet floor above ``floor``
    or chosen by other network scores (fewer windows scored) are not reused."""
    if not path.is_file():
        return None
    with np.load(path) as saved:
        scores, index = saved["scores"], saved["file_index"]
        saved_floor = float(saved["floor"]) if "floor" in saved.files else 0.0
        digest = str(saved["network_sha256"]) if "network_sha256" in saved.files else None
    if scores.shape != scored.scores.shape:
        return None
    if saved_floor > 0 and (saved_floor > floor or digest != network_digest(scored.scores)):
        return None
    if np.array_equal(index, scored.file_index):
        return scores
    out = np.empty_like(scores)
    for f in np.unique(scored.file_index):
        mine, theirs = scored.file_index == f, index == f
        if mine.sum() != theirs.sum():
            return None
        out[mine] = scores[theirs]  # a file's windows keep their order
    return out


def parse_gates(text: str) -> tuple[float, ...]:
    """``--gates``: comma-separated network scores in (0, 1), or 'none'."""
    if text.strip().lower() == "none":
        return ()
    gates = tuple(float(g) for g in text.split(","))
    for gate in gates:
        SecondStageConfig(weight=0.5, gate=gate)
    if any(not 0.0 < g for g in gates):
        raise ValueError(f"{text!r}: give gates in (0, 1)")
    return tuple(sorted(gates))


def apply_second_stage(model_dir: Path, best: dict, run: Path) -> dict:
    """Write the chosen second stage, threshold and decision into ``model_dir/config.json``."""
    config = read_model_config(model_dir)
    network = config.get("network_only") or {
        "threshold": config["threshold"],
        "threshold_source": config.get("threshold_source", ""),
        "decision": config.get("decision"),
    }
    config.update(
        network_only=network,
        second_stage=best["second_stage"],
        threshold=best["threshold"],
        threshold_source=f"fused out-of-source F1 maximum over files ({run})",
        decision=best["decision"],
    )
    path = Path(model_dir) / CONFIG_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(_jsonable(config), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return config


class Command(BatchCommand):
    help = "Choose YAMNet's second stage (weight, gate, threshold, decision) out of source."
    requires_system_checks = []

    def add_arguments(self, parser):
        add_data_argument(parser)
        parser.add_argument("--run", required=True, help="training run folder (out_of_fold.npz)")
        parser.add_argument("--weights", default="0.3,0.5,0.7", help="YAMNet's share to try")
        parser.add_argument(
            "--features-from",
            metavar="MODEL_DIR",
            help="features and stride of a run without config.json (--cv-only): this model's"
            " (default: --apply's, else detection/shipped/default)",
        )
        parser.add_argument(
            "--yamnet-floor",
            type=float,
            default=0.0,
            metavar="F",
            help="run YAMNet only on windows the network scores at or above F (default 0: all)",
        )
        parser.add_argument(
            "--gates",
            default=",".join(f"{g:g}" for g in GATES),
            help="gates to raise the best weight's to, ascending ('none': the exact gate)",
        )
        parser.add_argument("--out", help="folder for second_stage.md/.json (default: --run)")
        parser.add_argument("--apply", metavar="MODEL_DIR", help="write the best into a model")
        parser.add_argument(
            "--scores-from",
            action="append",
            metavar="DIR",
            help="reuse YAMNet's window scores saved in DIR by a run over the same files",
        )
        parser.add_argument("--threads", type=int, default=1)
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        torch.set_num_threads(opts["threads"])
        run = Path(opts["run"])
        try:
            scored = Scored.from_npz(run / "out_of_fold.npz")
            fallback = Path(opts["features_from"] or opts["apply"] or "detection/shipped/default")
            cfg, stride_s = run_config(run, fallback)
        except (OSError, ValueError, KeyError) as exc:
            raise CommandError(
                f"{run} is not a training run with out-of-fold scores: {exc}"
            ) from exc
        try:
            weights = tuple(float(w) for w in opts["weights"].split(","))
            for w in weights:
                SecondStageConfig(weight=w)
        except ValueError as exc:
            raise CommandError(f"--weights: {exc}") from exc
        try:
            gates = parse_gates(opts["gates"])
        except ValueError as exc:
            raise CommandError(f"--gates: {exc}") from exc
        out = Path(opts["out"] or run)
        out.mkdir(parents=True, exist_ok=True)
        floor = opts["yamnet_floor"]
        if not 0.0 <= floor < 1.0:
            raise CommandError(f"--yamnet-floor {floor}: give a network score in [0, 1)")

        cached = out / SCORES_FILE
        second = None
        for path in (cached, *(Path(p) / SCORES_FILE for p in opts["scores_from"] or [])):
            second = second if second is not None else reuse_scores(path, scored, floor)
        if second is None:
            recordings = load_recordings(opts["data"], None, 0, self)
            stage = SecondStage(SecondStageConfig(), load_yamnet(for_scoring=True))
            progress = (lambda it, **_: it) if opts["no_progress"] else tqdm
            only = scored.scores >= floor if floor > 0 else None
            try:
                second = yamnet_scores(scored, recordings, stage, cfg, stride_s, progress, only)
            except ValueError as exc:
                raise CommandError(f"{exc}: give the --data the run was trained on") from exc
            np.savez_compressed(
                cached,
                scores=second,
                file_index=scored.file_index,
                floor=np.float64(floor),
                network_sha256=np.str_(network_digest(scored.scores)),
            )

        result = compare(scored, second, cfg, stride_s, weights, floor=floor, gates=gates)
        table = comparison_md(result)
        (out / "second_stage.md").write_text(table)
        (out / "second_stage.json").write_text(
            json.dumps(_jsonable(result), indent=2, sort_keys=True) + "\n"
        )
        self.stdout.write(table)
        self.stdout.write(f"best: {result['best']}")
        if opts["apply"]:
            try:
                config = apply_second_stage(Path(opts["apply"]), result[result["best"]], run)
            except ArtifactError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(
                f"{opts['apply']}: second stage {config['second_stage']},"
                f" threshold {config['threshold']:.4f}"
            )
