"""Scoring workers' heartbeats in Redis: who is alive to score (scaled mode).

Every ``runworker detection-score`` process, once its model is loaded, writes the key
``eyescream:scoring-worker:<host>:<pid>`` every ``EYESCREAM_HEARTBEAT_INTERVAL_S`` seconds with
an expiry of three intervals. The beat runs on the worker's event loop, so a worker that is
killed, or whose loop is stuck, stops beating and its key expires. ``live_workers`` reads the
keys (``/readyz``, ``/metrics``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time

import redis
import redis.asyncio as aioredis

log = logging.getLogger(__name__)

PREFIX = "eyescream:scoring-worker:"
EXPIRY_INTERVALS = 3


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def beat_forever(url: str, interval_s: float, model_version: str) -> None:
    """Write this process's heartbeat every ``interval_s`` until cancelled."""
    client = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    key = PREFIX + worker_name()
    expiry_ms = int(EXPIRY_INTERVALS * interval_s * 1000)
    failing = False
    try:
        while True:
            value = json.dumps({"model": model_version, "at": time.time()})
            try:
                await client.set(key, value, px=expiry_ms)
                if failing:
                    log.info("scoring worker heartbeat written again")
                failing = False
            except (redis.RedisError, OSError) as exc:
                if not failing:
                    log.warning("scoring worker heartbeat not written: %s", type(exc).__name__)
                failing = True
            await asyncio.sleep(interval_s)
    finally:
        try:
            await client.delete(key)  # a worker that stops cleanly is gone at once
        except (redis.RedisError, OSError):
            pass
        await client.aclose()


def live_workers(url: str, timeout_s: float = 1.0) -> dict[str, dict]:
    """``{name: {"model", "at"}}`` of every worker whose heartbeat has not expired."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        keys = list(client.scan_iter(match=PREFIX + "*", count=100))
        values = client.mget(keys) if keys else []
    finally:
        client.close()
    workers = {}
    for key, value in zip(keys, values, strict=True):
        if value is not None:
            workers[key.decode()[len(PREFIX) :]] = json.loads(value)
    return workers
