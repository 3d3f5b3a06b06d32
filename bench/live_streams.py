"""Live detection latency: ``python -m bench.live_streams [--devices 200] [--mode scaled]``.

Starts daphne (embedded: SQLite + in-memory layer, scorer in-process; scaled: plus one
``runworker detection-score``, Redis and PostgreSQL), an operator's dashboard WebSocket and N
simulated devices streaming real recordings from the data set pack in real time, 16 kHz
pcm_s16le in 200 ms frames. Each device's audio is real non-scream audio (alarms, sirens,
laughing, speech, traffic, dogs, ...) with one real scream recording at a known time; the model
is the active one (``EYESCREAM_MODEL_DIR``, default the shipped model) with its own decision
settings.

Where each incident must open is computed first, offline, by the same code path: the device's
exact frames through ``DeviceStream`` (validation, resampling, features, windows), the level
gate, the model and ``IncidentTracker``. Latency is from the moment the client sent the frame
holding the last sample of the window that opens the scream's incident to the moment the
dashboard received its ``alert.created``.

A scream's alerts are those that open from 1.5 s before its labelled start to
``evidence_after_s`` after its labelled end (about 1.5 s with the shipped decision settings:
the latest an opening can still rest on a window that heard the scream). Alerts in the scream
recording's unlabelled stretches are counted apart (unknown audio). All other alerts are false
alerts, per hour of the non-scream recordings streamed. Prints p50/p95/p99 latency, screams
detected, false alerts per hour, samples lost (sent but never acknowledged as stored) and CPU
per process.

Other work on the host: ``--busy-cores 2`` keeps two cores busy beside the streams at the
default priority (``bench/_busy_cores.py``; ``--busy-priority idle`` as ``manage.py train``
runs by default, or a nice value), and ``--live-nice -10`` starts daphne and the worker with
``EYESCREAM_LIVE_NICE``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import math
import os
import signal
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._busy_cores import busy_work  # noqa: E402
from bench._host_speed import feed_us_per_frame  # noqa: E402
from bench.ingest_streams import CREATE, cpu_seconds  # noqa: E402
from eyescream_site.cpu_priority import parse_nice  # noqa: E402
from tests.devices.live import LiveServer, child_pids, stop_process  # noqa: E402
from tests.live.e2e import postgres_database  # noqa: E402
from tests.live.workers import (  # noqa: E402
    ScoringWorker,
    redis_url,
    start_celery_worker,
    worker_answers,
)

RATE = 16_000
FRAME_S = 0.2
DATASET = Path(os.environ.get("EYESCREAM_DATASETS", REPO.parent / "shared" / "datasets"))
BACKGROUND_KINDS = (
    "alarm", "siren_police", "laughing", "speech_turkish", "traffic", "street_ambience",
    "dog_bark", "clapping", "crowd_cheering", "coughing", "construction", "baby_cry",
)  # fmt: skip
OPERATOR = """
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
user = get_user_model().objects.create_user("bench", password="bench-pass-123")
user.groups.add(Group.objects.get(name="Operators"))  # the dashboard is for operators only
client = Client()
assert client.login(username="bench", password="bench-pass-123")
print("RESULT" + client.cookies["sessionid"].value)
"""
DEVICE_IDS = """
import json
from devices.models import Device
ids = Device.objects.filter(location__site__name="Bench").order_by("pk")
print("RESULT" + json.dumps(list(ids.values_list("pk", flat=True))))
"""


# --------------------------------------------------------------------------- audio


def read_16k(path: Path) -> np.ndarray:
    import soundfile

    from detection.features import resample

    audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    return resample(audio.mean(axis=1), rate, RATE).astype(np.float32)


def scream_spans(label_file: Path) -> list[tuple[float, float]]:
    spans = []
    for line in label_file.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[2].strip() == "1":
            spans.append((float(parts[0]), float(parts[1])))
    return spans


class Opening(NamedTuple):
    """Where the live path must open an incident (computed offline from the same frames)."""

    t_end: float  # stream time of the end of the window that opens it
    kind: str  # "scream", "unlabelled" or "false" (``Variant.kind_at``)
    # The frame whose arrival completes the window: later than the frame holding its last
    # sample only if the resampler held that sample back (it no longer does: a regression).
    completing_frame: int


class Variant:
    """One device's audio: real non-scream recordings with one real scream at ``scream_at``."""

    def __init__(
        self,
        pcm: np.ndarray,
        scream_at: float,
        spans: list[tuple[float, float]],
        name,
        pieces: list[tuple[float, dict]] = (),
        scream_length_s: float = 0.0,
    ):
        self.pcm = pcm
        self.scream_at = scream_at
        # The whole scream recording: its labels may cover only part of it, and a stretch
        # without a label is unknown (the data set's rule), neither scream nor non-scream.
        self.scream_length_s = scream_length_s
        self.spans = [(scream_at + s, scream_at + e) for s, e in spans]
        self.name = name
        # (start time, manifest row) of every recording in the composition, in order
        self.pieces = list(pieces)
        self.openings: list[Opening] = []
        # How long after a scream's labelled end an opening still belongs to it
        # (``evidence_after_s`` of the decision settings in use).
        self.after_s = 1.0

    @property
    def seconds(self) -> float:
        return len(self.pcm) / RATE

    def in_scream(self, t: float) -> bool:
        return any(s - 1.5 <= t <= e + self.after_s for s, e in self.spans)

    def piece_at(self, t: float) -> tuple[dict, float]:
        """The manifest row of the recording playing at ``t`` and the distance in seconds
        from ``t`` to the nearest join between two recordings (the scream's included)."""
        starts = [start for start, _ in self.pieces]
        index = max(0, int(np.searchsorted(starts, t, side="right")) - 1)
        joins = starts[1:] or [math.inf]
        return self.pieces[index][1], min(abs(t - j) for j in joins)

    def in_scream_recording(self, t: float) -> bool:
        """Inside the scream recording (or its tolerance) but maybe not inside a label."""
        end = self.scream_at + self.scream_length_s
        return self.scream_at - 1.5 <= t <= end + self.after_s

    def kind_at(self, t: float) -> str:
        """``scream``, ``unlabelled`` (the scream recording's unlabelled stretches) or
        ``false`` (non-scream audio) for an opening at ``t``."""
        if self.in_scream(t):
            return "scream"
        return "unlabelled" if self.in_scream_recording(t) else "false"

    def non_scream_seconds(self) -> float:
        """The audio of the non-scream recordings (the scream recording left out whole)."""
        return self.seconds - min(self.scream_length_s, self.seconds - self.scream_at)

    def scream_seconds(self) -> float:
        return sum(min(e, self.seconds) - s for s, e in self.spans if s < self.seconds)


def faded(piece: np.ndarray, fade_s: float) -> np.ndarray:
    """``piece`` with raised-cosine fades of ``fade_s`` at both ends (a join without a click)."""
    n = min(int(fade_s * RATE), len(piece) // 2)
    if n <= 0:
        return piece
    ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(np.float32)
    out = piece.copy()
    out[:n] *= ramp
    out[len(out) - n :] *= ramp[::-1]
    return out


def held_out_backgrounds(folder: Path) -> list[dict]:
    """Every non-scream recording of a pack's manifest (``packs build``), paths made absolute:
    backgrounds from collections a model trained on real-v1 never heard."""
    manifest = folder / "manifest.csv"
    if not manifest.is_file():
        raise SystemExit(f"no manifest.csv in {folder}")
    rows = list(csv.DictReader(open(manifest, newline="")))
    return [
        {**r, "path": str(folder / r["path"])}
        for r in rows
        if r["class"] in ("0_0", "0_1", "0_2") and float(r["duration_s"]) >= 0.5
    ]


def make_variants(
    count: int,
    seconds: float,
    seed: int = 0,
    fade_s: float = 0.0,
    backgrounds: list[dict] | None = None,
) -> list[Variant]:
    """``count`` compositions of ``seconds``: non-scream recordings cut end to end, with one
    scream recording at a random place. Joins are hard cuts unless ``fade_s`` > 0, which fades
    every recording in and out over that time (same draws, same lengths). The non-scream
    recordings are real-v1's backgrounds, or ``backgrounds`` (``held_out_backgrounds``)."""
    pack = DATASET / "real-v1"
    if not (pack / "manifest.csv").is_file():
        raise SystemExit(f"real recordings not found at {pack} (set EYESCREAM_DATASETS)")
    rows = list(csv.DictReader(open(pack / "manifest.csv", newline="")))
    rng = np.random.default_rng(seed)
    screams = [r for r in rows if r["class"] == "1" and 2.0 <= float(r["duration_s"]) <= 8.0]
    if backgrounds is None:
        backgrounds = [r for r in rows if r["subcategory"] in BACKGROUND_KINDS]
    read = {}

    def piece(row) -> np.ndarray:
        if row["path"] not in read:
            read[row["path"]] = read_16k(pack / row["path"])  # an absolute path stays as it is
        return read[row["path"]]

    def fill(samples: int, at: int, pieces: list) -> list[np.ndarray]:
        parts, total = [], 0
        while total < samples:
            row = backgrounds[rng.integers(len(backgrounds))]
            parts.append(faded(piece(row)[: samples - total], fade_s))
            pieces.append(((at + total) / RATE, row))
            total += len(parts[-1])
        return parts

    variants = []
    for _ in range(count):
        row = screams[rng.integers(len(screams))]
        scream = faded(piece(row), fade_s)
        spans = scream_spans(pack / row["label_file"])
        before = int(rng.uniform(0.3, 0.6) * (seconds * RATE - len(scream)))
        after = int(seconds * RATE) - before - len(scream)
        pieces: list = []
        head = fill(before, 0, pieces)
        pieces.append((before / RATE, row))
        tail = fill(after, before + len(scream), pieces)
        audio = np.concatenate([*head, scream, *tail])
        pcm = np.clip(np.round(audio * 32768.0), -32768, 32767).astype("<i2")
        variants.append(Variant(pcm, before / RATE, spans, row["path"], pieces, len(scream) / RATE))
    return variants


def offline_scores(variant: Variant, model, decision) -> tuple[list[float], list[int], np.ndarray]:
    """The live path for one composition, offline: its exact frames through ``DeviceStream``
    (validation, resampling, features, windows), the level gate and the model (with its second
    stage, if it has one, on the model-rate stream as the live path's ring holds it). Returns
    each window's end (stream time), the frame whose arrival completed it, and its probability
    (0 when gated)."""
    from detection.decision import LevelGate
    from detection.features import level_dbfs, resample
    from devices.protocol import Hello
    from live.stream_state import DeviceStream

    stream = DeviceStream(
        Hello("x", RATE, "pcm_s16le", 1, "bench", "offline"),
        model.features,
        model.stride_s,
        clock=lambda: 0.0,
    )
    gate = LevelGate(decision.level_gate_dbfs)
    frame = int(FRAME_S * RATE)
    ends, completed_by, windows, passed = [], [], [], []
    for start in range(0, len(variant.pcm), frame):
        for col, window in stream.feed(variant.pcm[start : start + frame].tobytes(), now=1e9):
            t0, t1 = stream.window_times(col)
            ends.append(t1)
            completed_by.append(start // frame)
            windows.append(window)
            passed.append(gate.passes(level_dbfs(stream.ring.between(t0, t1)[1])))
    probs, _ = model.predict_gated(np.stack(windows))  # as the scorer: with the first stage
    probs = probs * np.array(passed, dtype=np.float32)
    if model.second_stage is not None:
        rate = model.features.sample_rate
        audio = resample(variant.pcm.astype(np.float32) / 32768.0, RATE, rate)
        span = model.features.window_span_s()
        starts = np.asarray(ends) - span
        probs = model.second_stage.rescore(probs, audio, rate, starts, span)
    return ends, completed_by, probs


def evidence_after_s(decision, cfg, stride_s: float) -> float:
    """How long after the end of a scream an incident that the scream opened can still open.

    An incident opens ``min_duration_s`` after the first window whose smoothed score reaches
    the on-threshold; that score averages the last ``smoothing_windows`` windows, and each
    window reaches ``window_span_s`` back. An opening later than this after the scream's end
    rests on no window that heard the scream.
    """
    stride = cfg.column_start_s(cfg.stride_columns(stride_s))
    return decision.min_duration_s + (decision.smoothing_windows - 1) * stride + cfg.window_span_s()


def expected_openings(variants: list[Variant], model_dir: Path) -> None:
    """Where the live path must open incidents: the same frames through the same code."""
    from detection.artifacts import load_model
    from detection.decision import OPENED, IncidentTracker
    from detection.scoring import decision_defaults

    model = load_model(model_dir)
    decision = decision_defaults(model.config)
    after_s = evidence_after_s(decision, model.features, model.stride_s)
    for variant in variants:
        variant.after_s = after_s
        ends, completed_by, probs = offline_scores(variant, model, decision)
        tracker = IncidentTracker(decision, window_span_s=model.features.window_span_s())
        for t_end, frame, prob in zip(ends, completed_by, probs, strict=True):
            for event in tracker.update(t_end, float(prob)):
                if event.kind == OPENED:
                    variant.openings.append(Opening(t_end, variant.kind_at(t_end), frame))


# --------------------------------------------------------------------------- live


class Device:
    def __init__(self, url: str, token: str, variant: Variant) -> None:
        self.url, self.token, self.variant = url, token, variant
        self.frame_sent_at: list[float] = []
        self.sent = self.acked = 0
        self.error: str | None = None

    async def run(self, start_at: float) -> None:
        import websockets

        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        hello = {
            "type": "hello", "token": self.token, "sample_rate": RATE,
            "encoding": "pcm_s16le", "channels": 1, "client": "bench",
        }  # fmt: skip
        pcm, frame = self.variant.pcm, int(FRAME_S * RATE)
        try:
            async with websockets.connect(
                self.url, compression=None, proxy=None, open_timeout=60, ping_interval=None
            ) as ws:
                await ws.send(json.dumps(hello))
                ready = json.loads(await ws.recv())
                if ready.get("type") != "ready":
                    raise RuntimeError(f"refused: {ready}")
                receiver = asyncio.create_task(self._receive(ws))
                t0 = time.monotonic()
                for start in range(0, len(pcm), frame):
                    chunk = pcm[start : start + frame]
                    await ws.send(chunk.tobytes())
                    self.frame_sent_at.append(time.time())
                    self.sent += len(chunk)
                    await asyncio.sleep(max(0.0, t0 + self.sent / RATE - time.monotonic()))
                deadline = time.monotonic() + 15
                while self.acked < self.sent and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                receiver.cancel()
        except Exception as exc:
            self.error = repr(exc)

    async def _receive(self, ws) -> None:
        async for message in ws:
            data = json.loads(message)
            if data["type"] == "ack":
                self.acked = max(self.acked, data["samples"])

    def sent_at(self, stream_s: float) -> float:
        """When the frame holding the input sample at ``stream_s`` was sent."""
        sample = max(1, math.ceil(stream_s * RATE))
        index = min((sample - 1) // int(FRAME_S * RATE), len(self.frame_sent_at) - 1)
        return self.frame_sent_at[index]


async def dashboard(
    url: str, session: str, alerts: list, pictures: dict, stop: asyncio.Event
) -> None:
    """Collects ``(received_at, alert)`` of each ``alert.created`` and, per alert id, when the
    first update with its spectrogram picture arrived."""
    import websockets

    async with websockets.connect(
        url, proxy=None, additional_headers={"Cookie": f"sessionid={session}"}, open_timeout=60
    ) as ws:
        while not stop.is_set():
            try:
                message = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            data = json.loads(message)
            if data["type"] == "alert.created":
                alerts.append((time.time(), data["alert"]))
            elif data["type"] == "alert.updated" and data["alert"]["spectrogram_url"]:
                pictures.setdefault(data["alert"]["id"], time.time())


def _cpu(pid: int | tuple[int, ...]) -> float:
    pids = pid if isinstance(pid, tuple) else (pid,)
    return sum(cpu_seconds(p) for p in pids)


async def drive(server: LiveServer, devices: list[Device], args, session: str, pids: dict):
    alerts, pictures, stop = [], {}, asyncio.Event()
    dash = asyncio.create_task(
        dashboard(f"ws://127.0.0.1:{server.port}/ws/alerts/", session, alerts, pictures, stop)
    )
    await asyncio.sleep(1.0)
    if dash.done():
        dash.result()  # raises why the dashboard could not connect
    now = time.monotonic()
    cpu0 = {name: _cpu(pid) for name, pid in pids.items()}
    wall0 = time.monotonic()
    await asyncio.gather(
        *(d.run(now + args.ramp * i / len(devices)) for i, d in enumerate(devices))
    )
    wall = time.monotonic() - wall0
    cpu = {name: _cpu(pid) - cpu0[name] for name, pid in pids.items()}
    await asyncio.sleep(3.0)
    if draws_pictures(args):  # the last pictures, for up to 30 s more
        deadline = time.monotonic() + 30
        while len(pictures) < len(alerts) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
    stop.set()
    await dash
    return alerts, pictures, cpu, wall


def draws_pictures(args) -> bool:
    """Embedded mode draws them in daphne; scaled mode only with ``--celery``."""
    return not args.no_images and (args.mode == "embedded" or args.celery)


def picture_summary(alerts: list, pictures: dict) -> dict:
    """How long after its ``alert.created`` each alert's picture reached the dashboard."""
    delays = np.array([pictures[a["id"]] - at for at, a in alerts if a["id"] in pictures]) * 1000
    return {
        "alerts_with_picture": f"{delays.size} of {len(alerts)}",
        "picture_after_alert_ms_p50_p95_max": [
            round(float(np.percentile(delays, q)), 1) for q in (50, 95, 100)
        ]
        if delays.size
        else None,
    }


def warm_up(server: LiveServer, token: str, variant: Variant) -> None:
    """One short stream first: the server imports and loads everything before measuring."""
    short = Variant(variant.pcm[: 3 * RATE], 0.0, [], "warm-up")
    asyncio.run(Device(server.ws_url, token, short).run(time.monotonic()))


def latency_timeline(openings: list[tuple[float, float]], bin_s: float = 2.0) -> list[list]:
    """``[[seconds after the first opening, openings, p50 ms, max ms], ...]`` per ``bin_s``
    of the openings' send times, from ``(sent_at, latency_s)`` pairs: whether latency is
    steady or piles up while many incidents open together (bins without openings left out)."""
    if not openings:
        return []
    first = min(sent for sent, _ in openings)
    bins: dict[int, list[float]] = {}
    for sent, latency in openings:
        bins.setdefault(int((sent - first) // bin_s), []).append(latency * 1000)
    return [
        [round(k * bin_s, 1), len(v), round(float(np.median(v)), 1), round(max(v), 1)]
        for k, v in sorted(bins.items())
    ]


def summarize(devices, alerts, by_id, cpu, wall, args) -> dict:
    """Live alerts against the offline openings of each device's audio.

    The live decisions are deterministic in stream time, so a device's i-th live alert is its
    i-th offline opening when the counts agree (then whether it is a scream, and the window that
    opened it, are exact). Where they differ, an alert is placed in stream time by its
    ``started_at`` against the device's first frame (seconds-accurate) and has no latency.
    """
    received: dict[int, list[tuple[float, dict]]] = {}
    for at, alert in alerts:
        received.setdefault(alert["device"]["id"], []).append((at, alert))
    latencies, to_row, from_completing, held, timeline = [], [], [], 0, []
    detected = false_alerts = unlabelled = differs = 0
    screams = sum(1 for d in devices if d.variant.scream_seconds() > 0)
    for device_id, device in by_id.items():
        got = sorted(received.get(device_id, []), key=lambda item: item[0])
        openings = device.variant.openings
        if len(got) == len(openings):
            for (at, alert), (t_end, kind, frame) in zip(got, openings, strict=True):
                if kind == "scream":
                    sent = device.sent_at(t_end)
                    latencies.append(at - sent)
                    timeline.append((sent, at - sent))
                    created = datetime.fromisoformat(alert["created"]).timestamp()
                    to_row.append(created - sent)
                    completing = device.frame_sent_at[min(frame, len(device.frame_sent_at) - 1)]
                    from_completing.append(at - completing)
                    held += completing > sent
            detected += any(o.kind == "scream" for o in openings)
            false_alerts += sum(1 for o in openings if o.kind == "false")
            unlabelled += sum(1 for o in openings if o.kind == "unlabelled")
            continue
        differs += 1
        stream_zero = device.frame_sent_at[0] - FRAME_S if device.frame_sent_at else 0.0
        kinds = [
            device.variant.kind_at(
                datetime.fromisoformat(a["started_at"]).timestamp() - stream_zero
            )
            for _, a in got
        ]
        detected += "scream" in kinds
        false_alerts += kinds.count("false")
        unlabelled += kinds.count("unlabelled")
    extra = sum(len(v) for v in received.values()) - false_alerts - detected - unlabelled
    non_scream_h = sum(d.variant.non_scream_seconds() for d in devices) / 3600
    lat = np.array(latencies) * 1000

    def pct(q: float, values=lat):
        return round(float(np.percentile(values, q)), 1) if values.size else None

    row = np.array(to_row) * 1000

    return {
        "mode": args.mode,
        "devices": len(devices),
        "stream_seconds": args.seconds,
        "screams_streamed": screams,
        "screams_expected_offline": sum(
            any(o.kind == "scream" for o in d.variant.openings) for d in devices
        ),
        "screams_detected": detected,
        "extra_alerts_same_scream": extra,
        "devices_live_differs_from_offline": differs,
        "latency_ms_p50": pct(50),
        "latency_ms_p95": pct(95),
        "latency_ms_p99": pct(99),
        "latency_ms_max": round(float(lat.max()), 1) if lat.size else None,
        # The same latency split at the alert row's ``created`` time (set in the server process
        # just before the insert): before it = transport, features, scoring, decision, snippet;
        # after it = insert, commit, broadcast and the dashboard's receipt.
        # Per 2 s of the openings' send times: [s after the first, openings, p50 ms, max ms].
        "latency_by_time": latency_timeline(timeline),
        "to_row_ms_p50_p95": [pct(50, row), pct(95, row)],
        "after_row_ms_p50_p95": [pct(50, lat - row), pct(95, lat - row)] if lat.size else None,
        # A window whose last samples the resampler still held would be completed only by the
        # next frame, 200 ms later (soxr HQ did that to a third of the openings; the polyphase
        # resampler delays its output instead, so this should read 0).
        # ``from_completing_frame``: the same latency from the frame that completed the window.
        "openings_held_by_resampler": f"{held} of {len(from_completing)}",
        "from_completing_frame_ms_p50_p95_p99": [
            pct(q, np.array(from_completing) * 1000) for q in (50, 95, 99)
        ],
        "false_alerts": false_alerts,
        # Alerts in the scream recording's stretches that carry no label (unknown audio).
        "alerts_in_unlabelled_scream_audio": unlabelled,
        "non_scream_audio_hours": round(non_scream_h, 3),
        # Of which distinct (devices share compositions when --variants is below --devices).
        "distinct_non_scream_audio_hours": round(
            sum(
                v.non_scream_seconds() for v in {id(d.variant): d.variant for d in devices}.values()
            )
            / 3600,
            3,
        ),
        "false_alerts_per_hour": round(false_alerts / non_scream_h, 2) if non_scream_h else None,
        "samples_sent": sum(d.sent for d in devices),
        "samples_lost": sum(d.sent - d.acked for d in devices),
        "device_errors": [d.error for d in devices if d.error][:3],
        "cpu_percent_of_one_core": {k: round(100 * v / wall, 1) for k, v in cpu.items()},
        "load_average_1min": round(os.getloadavg()[0], 2),
        # Other work beside the streams (--busy-cores at --busy-priority) and the live
        # processes' EYESCREAM_LIVE_NICE (None: not set).
        "busy_cores_at_priority": [args.busy_cores, args.busy_priority]
        if args.busy_cores
        else None,
        "live_nice": int(args.live_nice) if args.live_nice else None,
        "host_feed_us_per_frame": feed_us_per_frame(),  # bench/_host_speed.py
    }


def busy_priority(raw: str) -> int | str:
    try:
        return parse_nice("--busy-priority", raw, idle_allowed=True)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.live_streams", description=__doc__)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0, help="audio per device")
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds to connect them all")
    parser.add_argument("--mode", choices=["embedded", "scaled"], default="scaled")
    parser.add_argument(
        "--web",
        type=int,
        default=1,
        help="scaled: daphne processes (devices spread over them round-robin, as behind the proxy)",
    )
    parser.add_argument("--scorers", type=int, default=1, help="scaled: scoring worker processes")
    parser.add_argument(
        "--redis-pool",
        type=int,
        default=0,
        help="scaled: raise the channel layer's Redis pool to N connections (bench.live_settings)",
    )
    parser.add_argument(
        "--no-images", action="store_true", help="diagnostic: no spectrogram pictures"
    )
    parser.add_argument("--logs", default="", help="copy the daphne and worker logs here")
    parser.add_argument(
        "--variants",
        type=int,
        default=0,
        help="distinct audio compositions (default: one per device; with fewer, devices repeat"
        " them and the false-alert rate is measured on less distinct audio than it says)",
    )
    parser.add_argument(
        "--celery",
        action="store_true",
        help="scaled: run the Celery worker beside (pictures drawn, timed to the dashboard)",
    )
    parser.add_argument(
        "--busy-cores",
        type=float,
        default=0.0,
        help="other work beside the streams: processes that keep this many cores busy",
    )
    parser.add_argument(
        "--busy-priority",
        type=busy_priority,
        default=0,
        help='the busy processes\' nice value, or "idle" (SCHED_IDLE)',
    )
    parser.add_argument(
        "--live-nice",
        default="",
        help="EYESCREAM_LIVE_NICE for daphne and the worker (default: not set)",
    )
    parser.add_argument(
        "--model",
        default=os.environ.get(
            "EYESCREAM_MODEL_DIR", str(REPO / "detection" / "shipped" / "default")
        ),
    )
    args = parser.parse_args(argv)
    if args.celery and args.mode != "scaled":
        parser.error("--celery needs --mode scaled (embedded mode draws pictures in daphne)")
    if (args.web != 1 or args.scorers != 1) and args.mode != "scaled":
        parser.error("--web and --scorers need --mode scaled (embedded mode is one process)")
    if args.web < 1 or args.scorers < 1:
        parser.error("--web and --scorers take 1 or more")
    model_dir = Path(args.model).resolve()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eyescream_site.settings")
    import torch

    torch.set_num_threads(1)
    variants = make_variants(args.variants or args.devices, max(args.seconds, 12.0))
    expected_openings(variants, model_dir)
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        env = {
            "LOG_LEVEL": "WARNING",
            # As deployed: with DEBUG, Django keeps every query in memory and wraps each cursor.
            "DJANGO_DEBUG": "0",
            "EYESCREAM_MODEL_DIR": str(model_dir),
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
        }
        if args.live_nice:
            env["EYESCREAM_LIVE_NICE"] = args.live_nice
        database = contextlib.nullcontext()
        if args.mode == "scaled":
            env["REDIS_URL"] = redis_url()
            database = postgres_database(f"eyescream_bench_{os.getpid()}")
            if args.redis_pool:
                env["DJANGO_SETTINGS_MODULE"] = "bench.live_settings"
                env["EYESCREAM_BENCH_REDIS_POOL"] = str(args.redis_pool)
        if args.no_images:
            env["DJANGO_SETTINGS_MODULE"] = "bench.live_settings"
            env["EYESCREAM_BENCH_NO_IMAGES"] = "1"
        with database as database_url:
            if database_url:
                env["DATABASE_URL"] = database_url
            return run(args, Path(tmp), env, variants)


def run(args, tmp: Path, env: dict, variants: list[Variant]) -> dict:
    server = LiveServer(tmp / "data", env)
    server.migrate()
    tokens = json.loads(server.shell(CREATE.format(n=args.devices + 1)).split("RESULT", 1)[1])
    ids = json.loads(server.shell(DEVICE_IDS).split("RESULT", 1)[1])
    session = server.shell(OPERATOR).split("RESULT", 1)[1].strip()
    celery = None
    workers: list[ScoringWorker] = []
    servers = [server]
    for i in range(1, args.web):  # more daphne processes on the same data, database and Redis
        shared = ("DJANGO_SECRET_KEY", "EYESCREAM_DEVICE_TOKEN_KEY")  # one deployment's keys
        extra = LiveServer(tmp / "data", {**env, **{k: server.env[k] for k in shared}})
        extra.log_path = tmp / "data" / f"daphne-{i}.log"
        servers.append(extra)
    for web in servers:
        web.start(timeout=60)
    pids = {
        "daphne": tuple(web.process.pid for web in servers),
        "load_generator": os.getpid(),
    }
    try:
        if args.mode == "scaled":
            for i in range(args.scorers):
                workers.append(ScoringWorker(server.env, tmp / f"worker-{i}.log"))
                workers[-1].start()
            pids["worker"] = tuple(w.process.pid for w in workers)
            # Ready before the first stream: a first request that times out while the worker
            # still imports torch would be scored inline, importing torch into daphne mid-run.
            asyncio.run(worker_answers(env["REDIS_URL"], Path(env["EYESCREAM_MODEL_DIR"]), 120))
        if args.celery:
            # At EYESCREAM_TASK_PRIORITY from the environment (default idle).
            celery = start_celery_worker(server.env, tmp / "celery.log", "--loglevel=WARNING")
            pids["celery"] = (celery.pid, *child_pids(celery.pid))
        for web in servers:
            warm_up(web, tokens[0], variants[0])
        # started by the first stream, if any
        writers = tuple(pid for web in servers for pid in child_pids(web.process.pid))
        if writers:
            pids["alert_writers"] = writers
        devices = [
            Device(servers[i % len(servers)].ws_url, token, variants[i % len(variants)])
            for i, token in enumerate(tokens[1:])
        ]
        with busy_work(args.busy_cores, args.busy_priority) as busy:
            if busy:
                pids["busy_work"] = tuple(busy)
            alerts, pictures, cpu, wall = asyncio.run(drive(server, devices, args, session, pids))
    finally:
        stop_process(celery)
        for pid in pids.get("celery", ())[1:]:  # its pool, should the worker have left it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for worker in workers:
            worker.stop()
        for web in servers:
            web.stop()
        if args.logs:
            Path(args.logs).mkdir(parents=True, exist_ok=True)
            for web in servers:
                Path(args.logs, web.log_path.name).write_text(web.log())
            for i, worker in enumerate(workers):
                Path(args.logs, f"worker-{i}.log").write_text(worker.log())
    by_id = dict(zip(ids[1:], devices, strict=True))
    alerts = [(at, a) for at, a in alerts if a["device"]["id"] in by_id]
    result = summarize(devices, alerts, by_id, cpu, wall, args)
    if draws_pictures(args):
        result["pictures"] = picture_summary(alerts, pictures)
    log = "".join(web.log() for web in servers)
    result["server_log"] = {  # requests that fell back to inline scoring, or were lost
        "scoring_inline_warnings": log.count("scoring inline"),
        "scoring_late_warnings": log.count("scoring answer late"),
        "windows_not_scored": log.count("could not be scored"),
        "tracebacks": log.count("Traceback"),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
