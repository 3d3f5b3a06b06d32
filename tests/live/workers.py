"""``manage.py runworker detection-score`` and a Celery worker as subprocesses, and a Redis
database of their own."""

from __future__ import annotations

import os
import random
import subprocess
import time
from pathlib import Path

import pytest

from tests.devices.live import PYTHON, REPO, child_pids, stop_process

REDIS_HOST = os.environ.get("EYESCREAM_TEST_REDIS", "redis://127.0.0.1:6379")
POSTGRES_URL = os.environ.get("EYESCREAM_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")


def redis_url() -> str:
    """A Redis URL on a random database 8-15 (flushed), so parallel tests do not share queues.

    A plain URL: it is also Celery's broker URL, which takes no redis-py options. Settings give
    the channel layer its read timeout; a test's own layer uses ``layer_hosts(url)``.
    """
    import redis

    url = f"{REDIS_HOST}/{random.randint(8, 15)}"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        client.flushdb()
    except redis.exceptions.ConnectionError as exc:
        message = f"no Redis at {REDIS_HOST}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return url


def layer_hosts(url: str) -> list[dict]:
    """Channel-layer hosts as settings.py builds them: reads wait longer than the blocking pop
    (redis-py 8 times out after 5 s by default, channels_redis blocks for 5 s)."""
    return [{"address": url, "socket_timeout": 30}]


async def worker_answers(url: str, model_dir: Path, timeout: float) -> None:
    """Send one scoring request over the channel layer and wait for the worker's answer (its
    first request loads the model, so a worker that answered is ready for streams)."""
    import asyncio

    import numpy as np
    from channels_redis.core import RedisChannelLayer

    from detection.artifact_config import read_model_config
    from detection.features import FeatureConfig
    from detection.scoring import features_key
    from live.scoring_messages import SCORE_CHANNEL, encode_request

    cfg = FeatureConfig.from_dict(read_model_config(model_dir)["features"])
    layer = RedisChannelLayer(hosts=layer_hosts(url))
    channel = await layer.new_channel()
    windows = np.full((1, cfg.n_mels, cfg.window_columns), -60.0, dtype=np.float32)
    await layer.send(SCORE_CHANNEL, encode_request(windows, channel, "probe", features_key(cfg)))
    try:
        reply = await asyncio.wait_for(layer.receive(channel), timeout)
    finally:
        await layer.close_pools()
    assert reply.get("type") == "score.result" and not reply.get("error"), reply


class ScoringWorker:
    """One scoring worker process; ``kill()`` it and ``start()`` it again."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.log_path = Path(log_path)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 (closed with the process)
        self.process = subprocess.Popen(
            [str(PYTHON), "manage.py", "runworker", "detection-score"],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def kill(self) -> None:
        stop_process(self.process, kill=True)
        self.process = None

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start_celery_worker(env: dict[str, str], log_path: Path, *options: str) -> subprocess.Popen:
    """``celery -A eyescream_site worker --concurrency=2`` as in ``docs/operations.md``, once
    its two pool processes are up."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "celery"), "-A", "eyescream_site", "worker"]
            + ["--concurrency=2", "--without-gossip", "--without-mingle", *options],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while len(child_pids(process.pid)) < 2:
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process, kill=True)
            raise RuntimeError(f"the Celery worker did not start:\n{log_path.read_text()}")
        time.sleep(0.2)
    return process
