"""Offline detection speed and memory: ``python -m bench.detect_speed [--minutes 60]``.

Builds a long FLAC from the real recordings in ../shared/datasets/real-v1 (in a temporary
folder, never in the repo), then runs ``detect`` on it in a fresh process with one torch
thread, and prints the speed (x real time, decoding and features included) and the peak
memory (max RSS) of that process.
"""

import argparse
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

CHILD = r"""
import json, resource, sys, time
import torch
torch.set_num_threads(1)
from detection.artifacts import load_model
from detection.inference import detect_file
model = load_model(sys.argv[1])
t0 = time.perf_counter()
result = detect_file(sys.argv[2], model, stride_s=float(sys.argv[3]))
elapsed = time.perf_counter() - t0
print(json.dumps({
    "seconds": elapsed,
    "duration_s": result.duration_s,
    "windows": int(result.scores.size),
    "segments": len(result.segments),
    "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def build_long_file(path: Path, minutes: float) -> float:
    """Concatenate real recordings until ``minutes`` of audio; returns seconds written."""
    files = sorted((DATASETS / "real-v1" / "audio").rglob("*.flac"))
    if not files:
        sys.exit(f"no recordings under {DATASETS / 'real-v1'}")
    target = int(minutes * 60 * 22_050)
    written = 0
    with sf.SoundFile(path, "w", samplerate=22_050, channels=1, format="FLAC") as out:
        while written < target:
            for f in files:
                audio, rate = sf.read(f, dtype="float32")
                if audio.ndim == 2:
                    audio = audio.mean(axis=1)
                audio = audio[: target - written]
                out.write(audio)
                written += audio.shape[0]
                if written >= target:
                    break
    return written / 22_050


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--stride", type=float, default=0.1)
    parser.add_argument("--model", default=str(REPO / "detection" / "shipped" / "default"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="eyescream-bench-") as tmp:
        path = Path(tmp) / "long.flac"
        t0 = time.perf_counter()
        seconds = build_long_file(path, args.minutes)
        print(f"built {seconds / 60:.1f} min of real audio in {time.perf_counter() - t0:.1f}s")
        out = subprocess.run(
            [sys.executable, "-c", CHILD, args.model, str(path), str(args.stride)],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        stats = json.loads(out.stdout.strip().splitlines()[-1])
    stats["x_real_time"] = stats["duration_s"] / stats["seconds"]
    print(
        f"detect: {stats['duration_s'] / 60:.1f} min of audio, stride {args.stride}s, "
        f"{stats['windows']} windows in {stats['seconds']:.2f}s on 1 thread "
        f"= {stats['x_real_time']:.0f}x real time; peak memory {stats['max_rss_mib']:.0f} MiB"
    )
    return stats


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
