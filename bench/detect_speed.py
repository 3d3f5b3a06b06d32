"""Offline detection speed and memory: ``python -m bench.detect_speed [--minutes 60]``.

Builds a long FLAC from the real recordings in ../shared/datasets/real-v1 (in a temporary
folder, never in the repo), then runs ``detect`` on it in a fresh process with one torch
thread, and prints the speed in x real time by wall clock and by the process's CPU time
(decoding, features, network and second stage included; the model's loading is not), the
windows scored a second, the share of windows the first stage settled and the share YAMNet
rescored, and the peak memory (max RSS) of that process.

``--audio`` picks the recordings: ``mixed`` (every recording in name order, 12 % of whose windows
reach YAMNet), ``non-scream`` (the recordings without a scream: what a deployed device hears
nearly all the time) or ``scream``. ``--no-first-stage`` runs every member of the ensemble on
every window; ``--compare`` runs without and then with the first stage on the same file;
``--stages`` times each stage alone instead (decoding, features, the network with and without the
first stage, YAMNet on the flagged windows; CPU time, the least of three).
The child runs at the benchmark's own priority (not through ``manage.py``, so
``EYESCREAM_BATCH_PRIORITY`` does not lower it). On a shared host the CPU figure is the steadier.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
DATASETS = Path(os.environ.get("EYESCREAM_DATASETS", REPO.parent / "shared" / "datasets"))
AUDIO_CHOICES = ("mixed", "non-scream", "scream")

CHILD = r"""
import json, resource, sys, time
import torch
torch.set_num_threads(1)
from detection.artifacts import load_model
from detection.inference import detect_file
model = load_model(sys.argv[1])
first_stage = sys.argv[4] == "1"
wall, cpu = time.perf_counter(), time.process_time()
result = detect_file(sys.argv[2], model, stride_s=float(sys.argv[3]), first_stage=first_stage)
cpu = time.process_time() - cpu
wall = time.perf_counter() - wall
print(json.dumps({
    "first_stage": first_stage and model.first_stage is not None,
    "wall_s": wall,
    "cpu_s": cpu,
    "duration_s": result.duration_s,
    "windows": int(result.scores.size),
    "settled": result.settled,
    "second_stage_windows": result.second_stage_windows,
    "segments": len(result.segments),
    "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""

STAGES_CHILD = r"""
import json, sys, time
import numpy as np, torch
torch.set_num_threads(1)
from detection.artifacts import load_model
from detection.features import StreamingFeatures, frame_windows
from detection.inference import read_blocks, second_stage_scores
model = load_model(sys.argv[1])
cfg, path = model.features, sys.argv[2]
stride = cfg.stride_columns(float(sys.argv[3]))

def least(fn, repeats=3):
    best, out = float("inf"), None
    for _ in range(repeats):
        started = time.process_time()
        out = fn()
        best = min(best, time.process_time() - started)
    return best, out

rate, _ = read_blocks(path)
decode_s, blocks = least(lambda: list(read_blocks(path)[1]))

def features():
    front = StreamingFeatures(cfg, rate)
    return np.concatenate([front.push(b) for b in blocks] + [front.flush()], axis=1)

features_s, columns = least(features)
windows = np.ascontiguousarray(frame_windows(columns, cfg, stride))
every_s, _ = least(lambda: model.predict(windows))
gated_s, (probs, passed) = least(lambda: model.predict_gated(windows))
starts = np.asarray(cfg.column_start_s(np.arange(windows.shape[0]) * stride), dtype=np.float64)
yamnet_s, flagged = 0.0, 0
if model.second_stage is not None:
    flagged = int(np.count_nonzero(model.second_stage.flagged(probs)))
    yamnet_s, _ = least(lambda: second_stage_scores(
        path, rate, probs, starts, cfg.window_span_s(), model.second_stage, cfg.sample_rate), 1)
minutes = sum(b.shape[0] for b in blocks) / rate / 60
print(json.dumps({
    "minutes": minutes, "windows": int(windows.shape[0]),
    "settled_share": float(1 - passed.mean()), "yamnet_windows": flagged,
    "ms_per_minute": {
        "decode": 1e3 * decode_s / minutes, "features": 1e3 * features_s / minutes,
        "network_every_member": 1e3 * every_s / minutes,
        "network_first_stage": 1e3 * gated_s / minutes, "yamnet": 1e3 * yamnet_s / minutes,
    },
}))
"""


def recordings(audio: str) -> list[Path]:
    """The real-v1 recordings of one ``--audio`` choice, in name order."""
    root = DATASETS / "real-v1"
    manifest = root / "manifest.csv"
    if not manifest.is_file():
        sys.exit(f"no recordings under {root}")
    with manifest.open(newline="") as f:
        rows = list(csv.DictReader(f))
    keep = {
        "mixed": lambda row: True,
        "non-scream": lambda row: row["class"] != "1",
        "scream": lambda row: row["class"] == "1",
    }[audio]
    return sorted(root / row["path"] for row in rows if keep(row))


def build_long_file(path: Path, minutes: float, audio: str = "mixed") -> float:
    """Concatenate real recordings until ``minutes`` of audio; returns seconds written."""
    files = recordings(audio)
    target = int(minutes * 60 * 22_050)
    written = 0
    with sf.SoundFile(path, "w", samplerate=22_050, channels=1, format="FLAC") as out:
        while written < target:
            for f in files:
                samples, rate = sf.read(f, dtype="float32")
                if rate != 22_050:
                    continue
                if samples.ndim == 2:
                    samples = samples.mean(axis=1)
                samples = samples[: target - written]
                out.write(samples)
                written += samples.shape[0]
                if written >= target:
                    break
    return written / 22_050


def run_child(model: str, path: Path, stride: float, first_stage: bool) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, model, str(path), str(stride), "1" if first_stage else "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    windows = max(1, stats["windows"])
    stats["x_real_time_wall"] = stats["duration_s"] / stats["wall_s"]
    stats["x_real_time_cpu"] = stats["duration_s"] / stats["cpu_s"]
    stats["windows_per_cpu_s"] = stats["windows"] / stats["cpu_s"]
    stats["settled_share"] = stats["settled"] / windows
    stats["second_stage_share"] = stats["second_stage_windows"] / windows
    return stats


def run_stages(model: str, path: Path, stride: float) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", STAGES_CHILD, model, str(path), str(stride)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    parts = stats["ms_per_minute"]
    with_first = parts["decode"] + parts["features"] + parts["network_first_stage"]
    stats["x_real_time_cpu_without_yamnet"] = 60_000 / with_first
    stats["x_real_time_cpu"] = 60_000 / (with_first + parts["yamnet"])
    print(
        "CPU per minute of audio (ms, each stage alone, least of three): "
        + ", ".join(f"{k} {v:.1f}" for k, v in parts.items())
        + f"; {100 * stats['settled_share']:.0f}% settled, {stats['yamnet_windows']} of "
        f"{stats['windows']} windows to YAMNet; sum with the first stage "
        f"{stats['x_real_time_cpu']:.0f}x real time "
        f"({stats['x_real_time_cpu_without_yamnet']:.0f}x without YAMNet)"
    )
    return stats


def describe(stats: dict, stride: float) -> str:
    stage = "with the first stage" if stats["first_stage"] else "every member on every window"
    return (
        f"detect ({stage}): {stats['duration_s'] / 60:.1f} min of audio, stride {stride}s, "
        f"{stats['windows']} windows; wall {stats['wall_s']:.2f}s = "
        f"{stats['x_real_time_wall']:.0f}x real time, CPU {stats['cpu_s']:.2f}s = "
        f"{stats['x_real_time_cpu']:.0f}x ({stats['windows_per_cpu_s']:.0f} windows per CPU s); "
        f"settled by the first stage {100 * stats['settled_share']:.1f}%, "
        f"to YAMNet {100 * stats['second_stage_share']:.2f}%; "
        f"peak memory {stats['max_rss_mib']:.0f} MiB"
    )


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--stride", type=float, default=0.1)
    parser.add_argument("--audio", choices=AUDIO_CHOICES, default="mixed")
    parser.add_argument("--model", default=str(REPO / "detection" / "shipped" / "default"))
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--no-first-stage", action="store_true")
    group.add_argument("--compare", action="store_true", help="without, then with, first stage")
    group.add_argument("--stages", action="store_true", help="time each stage alone")
    args = parser.parse_args(argv)
    runs = [False, True] if args.compare else [not args.no_first_stage]
    with tempfile.TemporaryDirectory(prefix="eyescream-bench-") as tmp:
        path = Path(tmp) / "long.flac"
        t0 = time.perf_counter()
        seconds = build_long_file(path, args.minutes, args.audio)
        print(
            f"built {seconds / 60:.1f} min of real audio ({args.audio}) "
            f"in {time.perf_counter() - t0:.1f}s"
        )
        if args.stages:
            return run_stages(args.model, path, args.stride)
        results = []
        for first_stage in runs:
            stats = run_child(args.model, path, args.stride, first_stage)
            print(describe(stats, args.stride), flush=True)
            results.append(stats)
    return results[-1] if len(results) == 1 else {"runs": results}


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
