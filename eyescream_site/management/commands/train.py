"""``manage.py train``: grouped cross-validation, optional random search, final model artifact."""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import fields

from django.core.management.base import CommandError

from detection.augment import AugmentConfig
from detection.dataset import DatasetError, LabelFormatError, scan_roots
from detection.features import FeatureConfig
from detection.folds import VALIDATIONS
from detection.training import run_training
from detection.training_plan import Hyper, Plan, TrainingError
from eyescream_site.management.batch_command import BatchCommand


def _augment_switches() -> list[str]:
    """Boolean fields of ``AugmentConfig`` (each gets a ``--no-<name>`` flag)."""
    return [f.name for f in fields(AugmentConfig) if f.type in (bool, "bool")]


class Command(BatchCommand):
    help = (
        "Train a scream detector on a labelled folder (audio + Audacity label files): grouped "
        "K-fold cross-validation picks the threshold and measures it, then a final model is "
        "trained on every file and saved as an artifact folder with metrics.json and report.md."
    )
    requires_system_checks = []  # no database needed

    def add_arguments(self, parser):
        defaults = Hyper()
        add_data_argument(parser)
        parser.add_argument("--out", required=True, help="artifact folder to write")
        parser.add_argument("--name", help="model name (default: the --out folder's name)")
        parser.add_argument("--arch", default=defaults.arch, help="A, A_Depthwise, B, C, CRNN")
        parser.add_argument(
            "--arch-params", default="{}", help="JSON of extra network parameters (e.g. width)"
        )
        parser.add_argument("--epochs", type=int, default=defaults.epochs)
        parser.add_argument(
            "--hard-negatives",
            type=float,
            default=defaults.hard_negatives,
            metavar="SHARE",
            help="share (0-1) of each epoch's non-scream windows drawn in proportion to their"
            " last training loss rather than uniformly (0: uniform)",
        )
        parser.add_argument(
            "--members",
            type=int,
            default=defaults.members,
            metavar="K",
            help="train K networks from different seeds and ship their average (an ensemble:"
            " steadier scores, K times the training and scoring time)",
        )
        parser.add_argument(
            "--distill",
            type=float,
            default=defaults.distill,
            metavar="SHARE",
            help="ship ONE network trained on the judgement of the --members networks: its"
            " target is (1 - SHARE) * label + SHARE * their probability (0: off; the model"
            " scores at the cost of one network)",
        )
        parser.add_argument("--folds", type=int, default=5, help="grouped K-fold's K (kfold)")
        parser.add_argument(
            "--validation",
            choices=VALIDATIONS,
            default="kfold",
            help="kfold: grouped K-fold over recording groups; loso: out-of-source, each source"
            " (the manifest's collection) held out once, threshold and decision chosen on"
            " out-of-source scores, figures per held-out source",
        )
        parser.add_argument(
            "--source-folds",
            type=int,
            default=0,
            metavar="K",
            help="with --validation loso: whole sources in K folds balanced by duration"
            " instead of one fold per source (0: one per source)",
        )
        parser.add_argument("--no-cv", action="store_true", help="skip cross-validation")
        parser.add_argument("--search", type=int, default=0, metavar="N", help="random trials")
        parser.add_argument("--search-epochs", type=int, help="epochs per search trial")
        parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
        parser.add_argument("--lr", type=float, default=defaults.lr)
        parser.add_argument("--beta1", type=float, default=defaults.beta1)
        parser.add_argument("--beta2", type=float, default=defaults.beta2)
        parser.add_argument("--eps", type=float, default=defaults.eps)
        parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
        parser.add_argument("--dropout", type=float, default=defaults.dropout)
        parser.add_argument(
            "--lr-schedule", choices=["constant", "cosine"], default=defaults.lr_schedule
        )
        parser.add_argument("--balance", choices=("sample", "pos_weight"), default=defaults.balance)
        parser.add_argument("--stride", type=float, default=0.1, help="serving stride (s)")
        parser.add_argument("--train-stride", type=float, default=0.1, help="training stride (s)")
        parser.add_argument("--aug-copies", type=int, default=2)
        parser.add_argument(
            "--cv-only",
            action="store_true",
            help="cross-validate and write metrics.json + report.md only (no final model)",
        )
        parser.add_argument(
            "--threshold-on",
            choices=("files", "windows"),
            default="files",
            help="maximise out-of-fold F1 of files (any window over it) or of windows",
        )
        parser.add_argument(
            "--eval-rates",
            default="",
            metavar="HZ[,HZ]",
            help="also score each held-out file as a device at these rates would stream it"
            " (e.g. 16000): the out-of-fold figures and the threshold then cover those too",
        )
        parser.add_argument(
            "--augment-preset",
            choices=("default", "field"),
            default="default",
            help="field: the defaults plus simulated rooms, microphone EQ, level from a whisper"
            " to saturation, clipping, AGC, compression and codecs, backgrounds down to -5 dB"
            " SNR (AugmentConfig.field); --augment and --no-* change it further",
        )
        parser.add_argument("--augment", help="JSON of AugmentConfig fields")
        for name in _augment_switches():
            parser.add_argument(
                f"--no-{name.replace('_', '-')}",
                dest=f"aug_off_{name}",
                action="store_true",
                help=f"turn off augmentation '{name}'",
            )
        parser.add_argument(
            "--features", default="{}", help="JSON of FeatureConfig fields to change"
        )
        parser.add_argument("--threads", type=int, default=2)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--limit-files", type=int, help="use only N files (quick runs)")
        parser.add_argument("--cache-dir", help="feature cache (default var/cache/features)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        if not 0.0 <= opts["hard_negatives"] <= 1.0:
            raise CommandError(
                f"--hard-negatives: a share from 0 to 1, got {opts['hard_negatives']}"
            )
        if opts["members"] < 1:
            raise CommandError(f"--members: at least 1, got {opts['members']}")
        if not 0.0 <= opts["distill"] <= 1.0:
            raise CommandError(f"--distill: a share from 0 to 1, got {opts['distill']}")
        if opts["distill"] > 0 and opts["members"] < 2:
            raise CommandError("--distill: give the teachers with --members K (K >= 2)")
        recordings = load_recordings(opts["data"], opts.get("limit_files"), opts["seed"], self)
        try:
            arch_params = json.loads(opts["arch_params"])
            if isinstance(arch_params, dict) and "members" in arch_params:
                raise CommandError("--arch-params: give the ensemble's size with --members")
            features = FeatureConfig.from_dict(
                {**FeatureConfig().to_dict(), **json.loads(opts["features"])}
            )
            augment = json.loads(opts["augment"]) if opts.get("augment") else None
            if opts.get("augment_preset") == "field":
                augment = {**AugmentConfig.field().to_dict(), **(augment or {})}
        except (json.JSONDecodeError, ValueError, TypeError) as exc:
            raise CommandError(f"bad JSON option: {exc}") from exc
        eval_rates = parse_eval_rates(opts["eval_rates"])
        switches = [n for n in _augment_switches() if opts.get(f"aug_off_{n}")]
        if switches:
            base = AugmentConfig.from_dict(augment) if augment else AugmentConfig()
            augment = {**base.to_dict(), **dict.fromkeys(switches, False)}
        hyper = Hyper(
            arch=opts["arch"],
            epochs=opts["epochs"],
            batch_size=opts["batch_size"],
            lr=opts["lr"],
            beta1=opts["beta1"],
            beta2=opts["beta2"],
            eps=opts["eps"],
            weight_decay=opts["weight_decay"],
            dropout=opts["dropout"],
            balance=opts["balance"],
            arch_params=arch_params,
            lr_schedule=opts["lr_schedule"],
            members=opts["members"],
            hard_negatives=opts["hard_negatives"],
            distill=opts["distill"],
        )
        plan = Plan(
            features=features,
            folds=opts["folds"],
            cross_validate=not opts["no_cv"],
            stride_s=opts["stride"],
            train_stride_s=opts["train_stride"],
            aug_copies=opts["aug_copies"],
            augment=augment,
            search=opts["search"],
            search_epochs=opts.get("search_epochs"),
            threads=opts["threads"],
            seed=opts["seed"],
            progress=not opts["no_progress"],
            threshold_on=opts["threshold_on"],
            eval_rates=eval_rates,
            final=not opts["cv_only"],
            validation=opts["validation"],
            source_folds=opts["source_folds"],
        )
        if plan.source_folds and plan.validation != "loso":
            raise CommandError("--source-folds splits sources: give --validation loso")
        if opts["cv_only"] and not plan.cross_validate:
            raise CommandError("--cv-only needs cross-validation: drop --no-cv")
        if plan.search and not plan.cross_validate:
            raise CommandError("--search scores trials by cross-validation: drop --no-cv")
        try:
            from detection.networks import ARCHITECTURES
        except ImportError as exc:
            raise CommandError(f"networks unavailable: {exc}") from exc
        if hyper.arch not in ARCHITECTURES:
            raise CommandError(f"unknown --arch {hyper.arch!r}; valid: {', '.join(ARCHITECTURES)}")
        if len(sys.argv) > 1 and sys.argv[1] == "train":
            command = shlex.join(["python", *sys.argv])
        else:  # called from code (call_command): the parsed options say what was asked
            skip = {"settings", "pythonpath", "traceback", "no_color", "force_color", "skip_checks"}
            command = (
                "call_command('train', "
                + json.dumps({k: v for k, v in sorted(opts.items()) if k not in skip}, default=str)
                + ")"
            )
        try:
            metrics = run_training(
                recordings,
                opts["out"],
                hyper,
                plan,
                data_dir=", ".join(str(d) for d in opts["data"]),
                command=command,
                name=opts.get("name"),
                cache_dir=opts.get("cache_dir"),
                log=lambda m: self.stdout.write(m),
            )
        except (TrainingError, DatasetError) as exc:
            raise CommandError(str(exc)) from exc
        cv = metrics.get("cv")
        if cv:
            w, f = cv["out_of_fold"]["window"], cv["out_of_fold"]["file"]
            self.stdout.write(
                f"out-of-fold windows: F1 {w['f1']:.3f} precision {w['precision']:.3f} "
                f"recall {w['recall']:.3f} AUC {_f(w['roc_auc'])}; files: F1 {f['f1']:.3f}"
                + _by_input_words(cv.get("by_input", {}))
                + f"; mean fold F1 {cv['mean']['f1']:.3f}"
            )
        saved = "report" if opts["cv_only"] else "model"
        self.stdout.write(
            self.style.SUCCESS(
                f"{saved} saved to {opts['out']} (threshold {metrics['threshold']:.4f})"
            )
        )


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def add_data_argument(parser) -> None:
    parser.add_argument(
        "--data",
        required=True,
        action="append",
        help="labelled data folder; give it again to add more roots (e.g. real-v1 and packs)",
    )


def load_recordings(data, limit, seed, command):
    """Labelled recordings of the roots ``data`` (CommandError when there are none),
    optionally a slice.

    ``--limit-files N`` keeps a seeded random subset of N files, half of them scream files
    (as far as the folder has them), the rest negatives.
    """
    import numpy as np

    try:
        result = scan_roots([data] if isinstance(data, str) else list(data))
    except (DatasetError, LabelFormatError) as exc:
        raise CommandError(str(exc)) from exc
    if result.unlabelled:
        names = ", ".join(result.unlabelled[:10])
        more = f" and {len(result.unlabelled) - 10} more" if len(result.unlabelled) > 10 else ""
        command.stderr.write(
            f"skipped {len(result.unlabelled)} audio file(s) without a label file: {names}{more}"
        )
    recordings = result.recordings
    if not recordings:
        raise CommandError(f"no labelled audio files in {data} (audio with a same-stem .txt)")
    if limit and limit < len(recordings):
        rng = np.random.default_rng(seed)
        screams = [r for r in recordings if r.has_scream]
        others = [r for r in recordings if not r.has_scream]
        # half scream files (as far as there are), the rest negatives
        n_scream = min(len(screams), max(1, limit // 2)) if others else limit
        n_scream = min(n_scream, len(screams))
        pick = [screams[i] for i in rng.permutation(len(screams))[:n_scream]]
        pick += [others[i] for i in rng.permutation(len(others))[: limit - len(pick)]]
        recordings = sorted(pick, key=lambda r: r.rel)
    return recordings


def _by_input_words(by_input: dict) -> str:
    """File F1 per input, when there are several: ' (as recorded 0.936, 16000 Hz 0.911)'."""
    if len(by_input) < 2:
        return ""
    return " (" + ", ".join(f"{k} {v['file']['f1']:.3f}" for k, v in by_input.items()) + ")"


def parse_eval_rates(text: str) -> tuple[int, ...]:
    """``--eval-rates``: comma-separated sample rates in Hz (empty: none)."""
    try:
        rates = tuple(int(r) for r in (text or "").split(",") if r.strip())
    except ValueError as exc:
        raise CommandError(f"--eval-rates: comma-separated sample rates, got {exc}") from exc
    if any(not 1_000 <= r <= 192_000 for r in rates):
        raise CommandError(f"--eval-rates: rates from 1000 to 192000 Hz, got {rates}")
    return rates
