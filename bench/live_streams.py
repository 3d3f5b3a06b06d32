"""Live detection latency: ``python -m bench.live_streams [--devices 50] [--mode embedded|scaled]``.

Starts daphne (embedded: SQLite + in-memory layer, scorer in-process; scaled: plus
``runworker detection-score``, Redis and PostgreSQL), a dashboard WebSocket client logged in as
a user, and N simulated devices streaming 16 kHz pcm_s16le in 200 ms frames in real time. Each
device's audio is quiet noise with one loud burst at a known time. The model is a small,
untrained Type A artifact whose decision block opens an incident on the first scored window
(this measures the pipeline, not the model's quality). Latency is from the send of the frame
holding the last sample of the window that opens the incident to the dashboard's receipt of
``alert.created``. Prints p50/p95/p99 latency, alerts per device, samples lost, and CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.ingest_streams import CREATE, cpu_seconds  # noqa: E402
from detection.features import FeatureConfig  # noqa: E402
from tests.detection.tiny_model import make_artifact  # noqa: E402
from tests.devices.live import LiveServer  # noqa: E402
from tests.live.workers import ScoringWorker, redis_url  # noqa: E402

RATE = 16_000
FRAME_S = 0.2
SESSION = """
from django.contrib.auth.models import User
from django.test import Client
User.objects.create_user("bench", password="bench-pass-123")
client = Client()
assert client.login(username="bench", password="bench-pass-123")
print("RESULT" + client.cookies["sessionid"].value)
"""


def opening_window_end(burst_s: float, cfg: FeatureConfig, stride_s: float) -> float:
    """Stream time of the end of the first window that overlaps the burst."""
    stride = cfg.stride_columns(stride_s)
    col = 0
    while cfg.column_start_s(col) + cfg.window_span_s() <= burst_s:
        col += stride
    return cfg.column_start_s(col) + cfg.window_span_s()


class Device:
    def __init__(self, url, token, seconds, burst_s, seed):
        rng = np.random.default_rng(seed)
        audio = rng.normal(0, 0.003, int(seconds * RATE))  # about -50 dBFS: gated
        b0 = int(burst_s * RATE)
        audio[b0 : b0 + RATE] = rng.normal(0, 0.2, RATE)
        self.pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
        self.url, self.token, self.burst_s = url, token, burst_s
        self.frame_sent_at: list[float] = []
        self.sent = self.acked = 0
        self.error = None

    async def run(self, start_at: float) -> None:
        import websockets

        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        hello = {
            "type": "hello", "token": self.token, "sample_rate": RATE,
            "encoding": "pcm_s16le", "channels": 1, "client": "bench",
        }  # fmt: skip
        frame = int(FRAME_S * RATE)
        try:
            async with websockets.connect(self.url, compression=None, proxy=None,
                                          open_timeout=60, ping_interval=None) as ws:  # fmt: skip
                await ws.send(json.dumps(hello))
                await ws.recv()
                receiver = asyncio.create_task(self._receive(ws))
                t0 = time.monotonic()
                for start in range(0, len(self.pcm), frame):
                    await ws.send(self.pcm[start : start + frame].tobytes())
                    self.frame_sent_at.append(time.time())
                    self.sent += frame
                    await asyncio.sleep(max(0.0, t0 + self.sent / RATE - time.monotonic()))
                deadline = time.monotonic() + 10
                while self.acked < self.sent and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                receiver.cancel()
        except Exception as exc:
            self.error = repr(exc)

    async def _receive(self, ws):
        async for message in ws:
            data = json.loads(message)
            if data["type"] == "ack":
                self.acked = data["samples"]


async def dashboard(url, cookie, alerts, stop):
    import websockets

    async with websockets.connect(url, proxy=None, additional_headers={"Cookie": cookie}) as ws:
        while not stop.is_set():
            try:
                message = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            data = json.loads(message)
            if data["type"] == "alert.created":
                alerts.append((time.time(), data["alert"]))


async def drive(server, tokens, args, pids):
    cfg = FeatureConfig()
    alerts, stop = [], asyncio.Event()
    cookie = "sessionid=" + server.shell(SESSION).split("RESULT", 1)[1].strip()
    dash = asyncio.create_task(dashboard(f"ws://127.0.0.1:{server.port}/ws/alerts/", cookie,
                                         alerts, stop))  # fmt: skip
    await asyncio.sleep(1.0)
    now = time.monotonic()
    devices = []
    for i, token in enumerate(tokens):
        burst = 3.0 + (i % 10) * 0.37
        devices.append(Device(server.ws_url, token, args.seconds, burst, i))
    cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
    wall0 = time.monotonic()
    await asyncio.gather(*(d.run(now + args.ramp * i / len(devices)) for i, d in
                           enumerate(devices)))  # fmt: skip
    wall = time.monotonic() - wall0
    cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
    await asyncio.sleep(2.0)
    stop.set()
    await dash
    by_device = {}
    for received, alert in alerts:
        by_device.setdefault(alert["device"] if not isinstance(alert["device"], dict)
                             else alert["device"]["id"], []).append(received)  # fmt: skip
    return devices, by_device, cpu, wall, cfg


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.live_streams", description=__doc__)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--ramp", type=float, default=3.0)
    parser.add_argument("--mode", choices=["embedded", "scaled"], default="embedded")
    args = parser.parse_args(argv)
    args.seconds = max(args.seconds, 7.0)  # bursts at 3.0-6.3 s, plus 1 s
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        decision = {"on_threshold": 1e-4, "off_threshold": 1e-4, "smoothing_windows": 1,
                    "min_duration_s": 0.0, "merge_gap_s": 1.0, "cooldown_s": 0.0,
                    "level_gate_dbfs": -40.0}  # fmt: skip
        model_dir = make_artifact(Path(tmp) / "model", seed=1)
        config = json.loads((model_dir / "config.json").read_text())
        config["decision"] = decision
        (model_dir / "config.json").write_text(json.dumps(config))
        env = {"LOG_LEVEL": "WARNING", "EYESCREAM_MODEL_DIR": str(model_dir),
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}  # fmt: skip
        if args.mode == "scaled":
            env["REDIS_URL"] = redis_url()
            env["DATABASE_URL"] = os.environ.get(
                "EYESCREAM_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test"
            )
        server = LiveServer(Path(tmp) / "data", env)
        server.migrate()
        if args.mode == "scaled":
            server.shell("from alerts.models import Alert; Alert.objects.all().delete()")
        tokens = json.loads(server.shell(CREATE.format(n=args.devices)).split("RESULT", 1)[1])
        ids = json.loads(server.shell(
            "import json; from devices.models import Device; print('RESULT' + json.dumps("
            "list(Device.objects.filter(location__site__name='Bench').order_by('pk')"
            ".values_list('pk', flat=True))))").split("RESULT", 1)[1])  # fmt: skip
        worker = None
        server.start()
        pids = {"daphne": server.process.pid}
        try:
            if args.mode == "scaled":
                worker = ScoringWorker(server.env, Path(tmp) / "worker.log")
                worker.start()
                pids["worker"] = worker.process.pid
                time.sleep(5)
            devices, by_device, cpu, wall, cfg = asyncio.run(drive(server, tokens, args, pids))
        finally:
            if worker:
                worker.stop()
            server.stop()
    latencies, missing, duplicates = [], 0, 0
    for device_id, device in zip(ids[-len(devices) :], devices, strict=True):
        got = by_device.get(device_id, [])
        if not got:
            missing += 1
            continue
        duplicates += len(got) - 1
        t_end = opening_window_end(device.burst_s, cfg, 0.1)
        frame = min(int(t_end / FRAME_S - 1e-9), len(device.frame_sent_at) - 1)
        latencies.append(got[0] - device.frame_sent_at[frame])
    lat = np.array(latencies) * 1000
    result = {
        "mode": args.mode,
        "devices": args.devices,
        "stream_seconds": args.seconds,
        "alerts_expected": args.devices,
        "devices_without_alert": missing,
        "extra_alerts": duplicates,
        "latency_ms_p50": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
        "latency_ms_p95": round(float(np.percentile(lat, 95)), 1) if lat.size else None,
        "latency_ms_p99": round(float(np.percentile(lat, 99)), 1) if lat.size else None,
        "latency_ms_max": round(float(lat.max()), 1) if lat.size else None,
        "samples_lost": sum(d.sent - d.acked for d in devices),
        "device_errors": [d.error for d in devices if d.error][:3],
        "cpu_percent_of_one_core": {k: round(100 * v / wall, 1) for k, v in cpu.items()},
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
