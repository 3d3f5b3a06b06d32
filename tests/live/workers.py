"""``manage.py runworker detection-score`` as a subprocess, and a Redis database of its own."""

from __future__ import annotations

import os
import random
import signal
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"
REDIS_HOST = os.environ.get("EYESCREAM_TEST_REDIS", "redis://127.0.0.1:6379")
POSTGRES_URL = os.environ.get("EYESCREAM_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")


def redis_url() -> str:
    """A Redis URL on a random database 8-15 (flushed), so parallel tests do not share queues.

    ``socket_timeout=30``: redis-py 8 reads time out after 5 s by default, the same as
    channels_redis's blocking-pop timeout, so an idle receive would fail without it.
    """
    import redis

    url = f"{REDIS_HOST}/{random.randint(8, 15)}?socket_timeout=30"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        client.flushdb()
    except redis.exceptions.ConnectionError as exc:
        message = f"no Redis at {REDIS_HOST}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return url


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
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
