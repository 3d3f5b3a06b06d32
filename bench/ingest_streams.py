"""Ingest capacity: ``python -m bench.ingest_streams [--streams 500] [--seconds 30]``.

Starts one daphne process (embedded mode: SQLite in a temporary folder, in-memory channel
layer), registers N devices, opens N real WebSocket streams that each send 16 kHz pcm_s16le in
200 ms frames in real time, and checks that every frame is stored (acked) and none rejected.
Prints the daphne process's CPU use per stream (measured from /proc while all streams flow).
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

from bench._host_speed import feed_us_per_frame  # noqa: E402
from tests.devices.live import LiveServer  # noqa: E402

CREATE = """
import json
from devices.models import Device, Location, Site
from devices.tokens import hash_token, new_token
from django.conf import settings
from django.utils import timezone
site = Site.objects.create(name="Bench")
location = Location.objects.create(site=site, name="Bench")
tokens = [new_token() for _ in range({n})]
Device.objects.bulk_create([
    Device(location=location, name=f"bench-{{i}}", token_created=timezone.now(),
           token_hash=hash_token(t, settings.DEVICE_TOKEN_KEY))
    for i, t in enumerate(tokens)
])
print("RESULT" + json.dumps(tokens))
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Stream:
    def __init__(self, url: str, token: str, rate: int, frame_s: float) -> None:
        self.url, self.token, self.rate = url, token, rate
        self.frame_samples = int(rate * frame_s)
        t = np.arange(self.frame_samples) / rate
        self.frame = (0.1 * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
        self.sent = 0
        self.acked = 0
        self.error = None
        self.close_code = None
        self.max_lag = 0.0
        self.retries = 0

    async def run(self, start_at: float, stop_at: float) -> None:
        import websockets

        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        for attempt in range(6):  # like a real device: retry a failed handshake with back-off
            try:
                ws = await websockets.connect(
                    self.url, compression=None, proxy=None, open_timeout=60, ping_interval=None
                )
                break
            except Exception as exc:
                self.retries += 1
                self.error = repr(exc)
                await asyncio.sleep(0.5 * 2**attempt)
        else:
            return
        self.error = None
        try:
            async with ws:
                await ws.send(
                    json.dumps(
                        {
                            "type": "hello",
                            "token": self.token,
                            "sample_rate": self.rate,
                            "encoding": "pcm_s16le",
                            "channels": 1,
                            "client": "bench",
                            "stream_id": "bench",
                        }
                    )
                )
                ready = json.loads(await ws.recv())
                if ready["type"] != "ready":
                    self.error = ready
                    return
                receiver = asyncio.create_task(self._receive(ws))
                t0 = time.monotonic()
                while time.monotonic() < stop_at:
                    await ws.send(self.frame)
                    self.sent += self.frame_samples
                    due = t0 + self.sent / self.rate
                    self.max_lag = max(self.max_lag, time.monotonic() - due)
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                deadline = time.monotonic() + 15
                while (
                    self.acked < self.sent and time.monotonic() < deadline and not receiver.done()
                ):
                    await asyncio.sleep(0.1)
                receiver.cancel()
        except Exception as exc:
            self.error = repr(exc)

    async def _receive(self, ws) -> None:
        async for message in ws:
            data = json.loads(message)
            if data["type"] == "ack":
                self.acked = data["samples"]
            elif data["type"] == "error":
                self.error = data
        self.close_code = ws.close_code


async def drive(streams: list[Stream], ramp_s: float, seconds: float, pid: int) -> dict:
    now = time.monotonic()
    steady_from = now + ramp_s + 2.0
    stop_at = steady_from + seconds
    tasks = [
        asyncio.create_task(s.run(now + ramp_s * i / len(streams), stop_at))
        for i, s in enumerate(streams)
    ]
    await asyncio.sleep(max(0.0, steady_from - time.monotonic()))
    cpu0, wall0, acked0 = cpu_seconds(pid), time.monotonic(), sum(s.acked for s in streams)
    await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
    cpu1, wall1, acked1 = cpu_seconds(pid), time.monotonic(), sum(s.acked for s in streams)
    await asyncio.gather(*tasks)
    return {"cpu_s": cpu1 - cpu0, "wall_s": wall1 - wall0, "acked_in_window": acked1 - acked0}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_streams", description=__doc__)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=30.0, help="steady-state duration")
    parser.add_argument("--rate", type=int, default=16000)
    parser.add_argument("--frame-ms", type=int, default=200)
    parser.add_argument("--ramp", type=float, default=20.0, help="seconds to open all streams")
    args = parser.parse_args(argv)
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.streams + 256)), hard))

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        server = LiveServer(Path(tmp), {"LOG_LEVEL": "WARNING", "DJANGO_DEBUG": "0"})
        server.migrate()
        tokens = json.loads(server.shell(CREATE.format(n=args.streams)).split("RESULT", 1)[1])
        server.start()
        try:
            streams = [Stream(server.ws_url, t, args.rate, args.frame_ms / 1000) for t in tokens]
            timing = asyncio.run(drive(streams, args.ramp, args.seconds, server.process.pid))
            stored = json.loads(
                server.shell(
                    "import json; from django.db.models import Sum;"
                    "from devices.models import Device;"
                    "a = Device.objects.aggregate("
                    "s=Sum('samples_received'), r=Sum('frames_rejected'));"
                    "print('RESULT' + json.dumps(a))"
                ).split("RESULT", 1)[1]
            )
        finally:
            server.stop()
    sent = sum(s.sent for s in streams)
    errors = [s.error for s in streams if s.error]
    result = {
        "streams": args.streams,
        "connected": sum(1 for s in streams if s.sent),
        "seconds_steady": round(timing["wall_s"], 1),
        "frames_sent": sent // int(args.rate * args.frame_ms / 1000),
        "samples_sent": sent,
        "samples_acked": sum(s.acked for s in streams),
        "samples_stored": stored["s"],
        "frames_rejected": stored["r"],
        "streams_with_errors": len(errors),
        "handshake_retries": sum(s.retries for s in streams),
        "first_errors": errors[:3],
        "sender_max_lag_s": round(max(s.max_lag for s in streams), 3),
        "daphne_cpu_percent_of_one_core": round(100 * timing["cpu_s"] / timing["wall_s"], 1),
    }
    # CPU per second of audio the server stored in the window (robust when it falls behind).
    audio_s = timing["acked_in_window"] / args.rate
    per_audio_s = timing["cpu_s"] / audio_s if audio_s else float("nan")
    result["cpu_ms_per_stream_second"] = round(1000 * per_audio_s, 3)
    result["cores_needed_for_all_streams_real_time"] = round(per_audio_s * args.streams, 2)
    result["load_average_1min"] = os.getloadavg()[0]
    result["host_feed_us_per_frame"] = feed_us_per_frame()  # bench/_host_speed.py
    result["ok"] = (
        result["connected"] == args.streams
        and not errors
        and result["samples_stored"] == sent
        and result["samples_acked"] == sent
        and result["frames_rejected"] == 0
    )
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    sys.exit(0 if main()["ok"] else 1)
