"""Retraining time for one hour of feedback: ``python -m bench.retrain_time [--hours 1]``.

Synthesises a feedback export of ``--hours`` of real audio: the recordings of
../shared/datasets/real-v1 cut into alert-sized snippets (at most 20 s, resampled to the 16 kHz a
device streams), each with a verdict from its labels -- scream files confirmed with ``1`` over
their first scream segment, every other file dismissed with its class as the reason -- spread
over three sites, four devices each and 30 days of verdicts. Then runs the retraining exactly
as ``manage.py retrain`` does with its defaults (``detection.retrain_run.run_retrain``: base
pack real-v1, fixed pack real-v1's held-out sources, fine-tuning the shipped model, 3 epochs,
7 days held back per site) in a temporary folder with an empty feature cache, and prints the
time of each step and in all. Nothing is written in the repository.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
DATASETS = Path(os.environ.get("EYESCREAM_DATASETS", REPO.parent / "shared" / "datasets"))
MODEL = REPO / "detection" / "shipped" / "default"
RATE = 16_000
SNIPPET_S = 20.0
SITES = ("North", "Harbour", "School")


def synthesise(folder: Path, hours: float):
    """Snippet files and their ``ExportItem`` until ``hours`` of audio; returns the items."""
    from detection.dataset import load_audio, scan
    from detection.feedback_set import ExportItem

    recordings = scan(DATASETS / "real-v1").recordings
    if not recordings:
        sys.exit(f"no labelled recordings under {DATASETS / 'real-v1'}")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(recordings))
    target = hours * 3600.0
    items, total, n = [], 0.0, 0
    now = dt.datetime.now(dt.UTC)
    while total < target:
        for index in order:
            rec = recordings[int(index)]
            audio = load_audio(rec.path, RATE)
            screams = [s for s in rec.segments if s.label == "1"]
            # Confirmed: the snippet from 2 s before the first scream; dismissed: the file's start.
            start_s = max(0.0, screams[0].start - 2.0) if screams else 0.0
            piece = audio[int(start_s * RATE) : int((start_s + SNIPPET_S) * RATE)]
            piece = piece[: int((target - total) * RATE) + 1]
            if piece.size < RATE // 2:
                continue
            n += 1
            path = folder / f"snippet{n}.flac"
            sf.write(path, piece, RATE, format="FLAC", subtype="PCM_16")
            site = SITES[n % len(SITES)]
            items.append(
                ExportItem(
                    alert_id=n,
                    site=site,
                    device=f"{site.lower()}-mic{n % 4}",
                    model_version="bench",
                    reviewer="bench",
                    verdict="1" if screams else rec.kind,
                    verdict_time=now - dt.timedelta(days=float(rng.uniform(0, 30))),
                    snippet_path=path,
                    incident_start_s=(screams[0].start - start_s) if screams else 0.0,
                    incident_end_s=(screams[0].end - start_s) if screams else None,
                )
            )
            total += piece.size / RATE
            if total >= target:
                break
    return items, total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0, help="hours of feedback")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    from detection.feedback_set import export_items
    from detection.retrain_run import change_words, run_retrain
    from detection.retraining import RetrainOptions

    from ._host_speed import feed_us_per_frame

    real_v1 = DATASETS / "real-v1"
    steps: list[tuple[float, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-retrain-") as tmp:
        tmp = Path(tmp)
        (tmp / "snippets").mkdir()
        began = time.monotonic()
        items, seconds = synthesise(tmp / "snippets", args.hours)
        result = export_items(items, tmp / "export")
        exported = time.monotonic() - began
        started = time.monotonic()
        outcome = run_retrain(
            base_roots=[real_v1],
            feedback_root=tmp / "export",
            fixed_root=real_v1,
            active_dir=MODEL,
            work=tmp / "run",
            options=RetrainOptions(epochs=args.epochs, threads=args.threads, progress=False),
            cache_dir=tmp / "cache",
            name="bench",
            progress=lambda f, m: steps.append((time.monotonic() - started, m)),
            log=lambda m: None,
        )
        total = time.monotonic() - started
    phases = {}
    for (t, message), (t_next, _) in zip(steps, [*steps[1:], (total, "")], strict=True):
        key = "splitting" if "clips train" in message else message.split(",")[0]
        key = key.split(" with the ")[0]
        phases[key] = round(phases.get(key, 0.0) + (t_next - t), 1)
    counts = result.counts()
    print(
        json.dumps(
            {
                "feedback_hours": round(seconds / 3600, 3),
                "feedback_clips": result.exported,
                "feedback_by_label": counts,
                "export_and_synthesis_s": round(exported, 1),
                "retrain_s": round(total, 1),
                "retrain_min": round(total / 60, 2),
                "epochs": args.epochs,
                "data": outcome.metrics["data"] | {"sites": None},
                "steps_s": phases,
                "host_feed_us_per_frame": feed_us_per_frame(),
                "cpu_count": os.cpu_count(),
            },
            indent=2,
        )
    )
    print(change_words(outcome.metrics))


if __name__ == "__main__":
    main()
