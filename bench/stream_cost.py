"""CPU cost of one live stream, piece by piece: ``python -m bench.stream_cost [--minutes 10]``.

Streams real recordings of ../shared/datasets/real-v1 (the non-scream ones by default, what a
device hears nearly all the time; ``--audio mixed`` for every recording) as a 16 kHz device
sends them (``pcm_s16le``, 200 ms frames) through the live path's own code, in this one process
on one thread, and measures CPU time (``time.process_time``) per stream-second of:

* the front end in daphne: ``DeviceStream.feed`` (decoding, resampling, STFT, log-mel, windows)
  and the level gate on each window (``StreamScoring.push``);
* the network in the scoring worker: the windows the level gate passes, scored in batches of the
  scorer's ``MAX_BATCH`` with every member of the ensemble and with its first stage
  (``detection.first_stage``), as ``Scorer._forward`` runs them (alternated, the least CPU of
  three runs each);
* YAMNet's second opinion in daphne on the windows the network flags (``SecondOpinion``).

From those it prints windows scored per CPU second and the streams one core carries for each
piece and for all of them (transport, Redis, the decision and alerts are not included:
``bench.live_streams`` measures the whole path).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import soundfile as sf
import torch

from bench.detect_speed import AUDIO_CHOICES, REPO, recordings
from detection.artifacts import load_model
from detection.decision import DecisionConfig, LevelGate
from detection.features import resample, to_mono
from detection.scoring import MAX_BATCH
from devices.protocol import Hello
from live.stream_state import DeviceStream

RATE = 16_000
FRAME_S = 0.2
REPEATS = 3


def device_pcm(minutes: float, audio: str) -> np.ndarray:
    """``minutes`` of real recordings at 16 kHz as int16, one after the other in a shuffled
    order (seed 0: a few minutes hold many kinds of sound, not one collection's)."""
    target = int(minutes * 60 * RATE)
    paths = recordings(audio)
    np.random.default_rng(0).shuffle(paths)
    parts, total = [], 0
    while total < target:
        for path in paths:
            samples, rate = sf.read(path, dtype="float32")
            part = resample(to_mono(samples), rate, RATE)[: target - total]
            parts.append(np.clip(np.round(part * 32767), -32768, 32767).astype("<i2"))
            total += part.shape[0]
            if total >= target:
                break
    return np.concatenate(parts)


def measure(minutes: float, audio: str, model_dir: str) -> dict:
    torch.set_num_threads(1)
    model = load_model(model_dir)
    decision = DecisionConfig.from_model(model.config.get("decision"), model.threshold)
    pcm = device_pcm(minutes, audio)
    seconds = pcm.shape[0] / RATE
    frame = int(FRAME_S * RATE)
    frames = [pcm[i : i + frame].tobytes() for i in range(0, pcm.shape[0], frame)]

    stream = DeviceStream(Hello("x", RATE, "pcm_s16le", 1, "bench", "cost"), model.features, 0.1)
    list(stream.feed(frames[0], now=1e9))  # the first frame builds the filter bank
    gate = LevelGate(decision.level_gate_dbfs)
    kept, starts = [], []
    started = time.process_time()
    for payload in frames[1:]:
        for col, window in stream.feed(payload, now=1e9):
            t0, t1 = stream.window_times(col)
            if gate.passes(stream.ring.level_dbfs(t0, t1)):
                kept.append(window)
                starts.append(t0)
    front_s = time.process_time() - started
    windows = np.stack(kept)

    def score(first_stage: bool) -> tuple[float, np.ndarray, int]:
        probs, settled = [], 0
        started = time.process_time()
        for i in range(0, windows.shape[0], MAX_BATCH):
            batch = windows[i : i + MAX_BATCH]
            if first_stage:
                p, passed = model.predict_gated(batch, batch_size=MAX_BATCH)
                settled += int(passed.size - np.count_nonzero(passed))
            else:
                p = model.predict(batch, batch_size=MAX_BATCH)
            probs.append(p)
        return time.process_time() - started, np.concatenate(probs), settled

    model.predict(windows[:MAX_BATCH])  # warm up
    every_s = gated_s = float("inf")
    for _ in range(REPEATS):  # alternated; the least CPU of each (a shared host adds noise)
        seconds_every, every_probs, _ = score(False)
        seconds_gated, gated_probs, settled = score(True)
        every_s, gated_s = min(every_s, seconds_every), min(gated_s, seconds_gated)
    second_s, flagged = 0.0, 0
    if model.second_stage is not None:
        stage = model.second_stage
        mask = stage.flagged(gated_probs)
        flagged = int(mask.sum())
        if flagged:  # from the whole signal (the ring holds only its last seconds)
            rate = model.features.sample_rate
            signal = resample(pcm.astype(np.float32) / 32768.0, RATE, rate)
            span = model.features.window_span_s()
            started = time.process_time()
            stage.scream_scores(signal, rate, np.asarray(starts)[mask], span)
            second_s = time.process_time() - started
    n = windows.shape[0]
    per_stream_ms = {
        "front_end": 1e3 * front_s / seconds,
        "network_every_member": 1e3 * every_s / seconds,
        "network_first_stage": 1e3 * gated_s / seconds,
        "second_stage": 1e3 * second_s / seconds,
    }
    total_ms = (
        per_stream_ms["front_end"]
        + per_stream_ms["network_first_stage"]
        + per_stream_ms["second_stage"]
    )
    return {
        "audio": audio,
        "stream_seconds": round(seconds, 1),
        "windows_cut": gate.scored + gate.gated,
        "level_gated_share": round(gate.gated / max(1, gate.scored + gate.gated), 4),
        "first_stage_settled_share": round(settled / max(1, n), 4),
        "second_stage_share": round(flagged / max(1, n), 4),
        "max_score_difference": float(
            np.abs(gated_probs - every_probs)[gated_probs > 0].max(initial=0.0)
        ),
        "windows_per_cpu_s_every_member": round(n / every_s),
        "windows_per_cpu_s_first_stage": round(n / gated_s),
        "cpu_ms_per_stream_second": {k: round(v, 3) for k, v in per_stream_ms.items()},
        "streams_per_core": {
            "front_end": round(1e3 / per_stream_ms["front_end"]),
            "network_every_member": round(1e3 / per_stream_ms["network_every_member"]),
            "network_first_stage": round(1e3 / per_stream_ms["network_first_stage"]),
            "front_end_network_second_stage": round(1e3 / total_ms),
        },
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--audio", choices=AUDIO_CHOICES, default="non-scream")
    parser.add_argument("--model", default=str(REPO / "detection" / "shipped" / "default"))
    args = parser.parse_args(argv)
    result = measure(args.minutes, args.audio, args.model)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
