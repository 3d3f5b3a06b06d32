"""``python -m devices.client``: stream a file or the microphone to an Eye-SCREAM server."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys

from .streamer import FatalServerError, Streamer


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devices.client", description=__doc__)
    parser.add_argument(
        "--server",
        default=os.environ.get("EYESCREAM_SERVER", "ws://127.0.0.1:8000/ws/devices/stream/"),
        help="ingest WebSocket URL (env EYESCREAM_SERVER)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("EYESCREAM_DEVICE_TOKEN"),
        help="device token (prefer env EYESCREAM_DEVICE_TOKEN: argv is visible to other users)",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", help="audio file to stream in real time")
    source.add_argument("--mic", action="store_true", help="stream the microphone (sounddevice)")
    parser.add_argument("--loop", action="store_true", help="repeat the file forever")
    parser.add_argument("--speed", type=float, default=1.0, help="file pace, x real time")
    parser.add_argument("--rate", type=int, default=16000, help="microphone sample rate")
    parser.add_argument("--input-device", default=None, help="sounddevice input device")
    parser.add_argument("--frame-ms", type=int, default=200, help="audio per frame")
    parser.add_argument("--buffer-s", type=float, default=30.0, help="backlog kept offline")
    parser.add_argument("--name", default="devices.client", help="client name sent in hello")
    parser.add_argument(
        "--disabled-retry-s",
        type=float,
        default=5.0,
        help="a disabled device (4013) asks again after this long, doubling to 60 s",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("a device token is required (--token or EYESCREAM_DEVICE_TOKEN)")
    if args.speed <= 0:
        parser.error("--speed must be positive")
    if args.disabled_retry_s <= 0:
        parser.error("--disabled-retry-s must be positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    from .sources import FileSource, MicSource

    frame_s = args.frame_ms / 1000
    if args.file:
        source = FileSource(args.file, frame_s=frame_s, loop=args.loop, speed=args.speed)
    else:
        source = MicSource(rate=args.rate, frame_s=frame_s, device=args.input_device)
    streamer = Streamer(
        args.server,
        args.token,
        source.rate,
        source.channels,
        client_name=args.name,
        buffer_s=args.buffer_s,
        capture_times=not args.file or args.speed == 1.0,
        disabled_min_s=args.disabled_retry_s,
        disabled_max_s=max(60.0, args.disabled_retry_s),
    )
    try:
        report = asyncio.run(streamer.run(source.frames()))
    except FatalServerError as exc:
        print(f"server refused the stream: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    summary = {
        "stream_id": report.stream_id,
        "captured_samples": report.captured,
        "acked_samples": report.acked,
        "dropped_samples": report.dropped,
        "connections": report.connections,
        "disabled": report.disabled,
        "rate": source.rate,
    }
    print(json.dumps(summary))
    return 0
