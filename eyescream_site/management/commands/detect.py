"""Offline detection: ``python manage.py detect PATH [PATH ...] [--json] [--labels DIR]``."""

import json
from pathlib import Path

import torch
from django.conf import settings
from django.core.management.base import CommandError
from tqdm import tqdm

from detection.artifacts import ArtifactError, load_model
from detection.dataset import Segment as LabelSegment
from detection.dataset import write_labels
from detection.inference import AudioReadError, detect_file, expand_paths
from eyescream_site.management.batch_command import BatchCommand


class Command(BatchCommand):
    help = (
        "Score audio files with the active model and propose scream segments. "
        "Folders are searched for audio files. Exits non-zero if any file could not be read."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", help="audio files or folders")
        parser.add_argument("--json", action="store_true", help="print a JSON array")
        parser.add_argument("--model", default=None, help="artifact folder (default: active)")
        parser.add_argument("--stride", type=float, default=None, help="window stride, s")
        parser.add_argument("--threshold", type=float, default=None, help="override threshold")
        parser.add_argument(
            "--labels", default=None, help="write an Audacity label file per input here"
        )
        parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
        parser.add_argument(
            "--no-first-stage",
            action="store_true",
            help="run every member of an ensemble on every window (no first stage)",
        )

    def handle(self, *args, **options):
        torch.set_num_threads(max(1, options["threads"]))
        model_dir = Path(options["model"] or settings.EYESCREAM_MODEL_DIR)
        try:
            model = load_model(model_dir)
        except ArtifactError as exc:
            raise CommandError(str(exc)) from exc
        paths = expand_paths(options["paths"])
        if not paths:
            raise CommandError("no audio files found in the given paths")
        labels_dir = Path(options["labels"]) if options["labels"] else None
        if labels_dir:
            labels_dir.mkdir(parents=True, exist_ok=True)

        results, failures, used_names = [], 0, set()
        for path in tqdm(paths, desc="detect", unit="file", disable=len(paths) < 2):
            try:
                found = detect_file(
                    path,
                    model,
                    stride_s=options["stride"],
                    threshold=options["threshold"],
                    first_stage=not options["no_first_stage"],
                )
            except (AudioReadError, FileNotFoundError, OSError) as exc:
                failures += 1
                results.append({"path": str(path), "error": str(exc)})
                continue
            results.append(found.to_dict())
            if labels_dir:
                name = _unique_name(path.stem, used_names)
                write_labels(
                    labels_dir / f"{name}.txt",
                    [LabelSegment(s.start_s, s.end_s, "1") for s in found.segments],
                )

        if options["json"]:
            self.stdout.write(json.dumps(results, indent=2))
        else:
            for item in results:
                self.stdout.write(_describe(item))
        if failures:
            raise CommandError(f"{failures} of {len(paths)} file(s) could not be read")


def _unique_name(stem: str, used: set[str]) -> str:
    name, n = stem, 1
    while name in used:
        n += 1
        name = f"{stem}-{n}"
    used.add(name)
    return name


def _describe(item: dict) -> str:
    if "error" in item:
        return f"{item['path']}: ERROR {item['error']}"
    spans = ", ".join(
        f"{s['start_s']:.1f}-{s['end_s']:.1f}s ({s['peak_score']:.2f})" for s in item["segments"]
    )
    verdict = f"{len(item['segments'])} scream segment(s): {spans}" if spans else "no scream"
    return (
        f"{item['path']}: {item['duration_s']:.1f}s, max {item['max_score']:.2f} "
        f"(threshold {item['threshold']:.2f}) -> {verdict}"
    )
