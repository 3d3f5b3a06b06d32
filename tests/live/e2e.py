"""Helpers for end-to-end runs: a PostgreSQL database of its own, an operator's dashboard
WebSocket that records every message, the reference client as a subprocess, and where a
snippet lies in its source recording."""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from tests.devices.live import PYTHON, REPO, LiveServer, child_pids

from .workers import POSTGRES_URL

OPERATOR_SESSION = """
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
user = get_user_model().objects.create_user({name!r}, password="pw-for-tests-only")
user.groups.add(Group.objects.get(name="Operators"))
client = Client()
assert client.login(username={name!r}, password="pw-for-tests-only")
print("RESULT" + client.cookies["sessionid"].value)
"""

ALERT_ROWS = """
import json
from alerts.models import Alert
rows = [
    {{"id": a.id, "device": a.device_id, "ended": a.ended_at is not None,
      "snippet": a.snippet.name, "peak": a.peak_score, "model": a.model_version}}
    for a in Alert.objects.filter(device_id__in={ids!r}).order_by("id")
]
print("RESULT" + json.dumps(rows))
"""


def alert_writer_pids(pid: int) -> list[int]:
    """The alert writer processes daphne ``pid`` started (``alerts/writer_process.py``)."""
    return [c for c in child_pids(pid) if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def unavailable(message: str) -> None:
    """Skip with the reason; fail instead on CI (where the service must be there)."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def postgres_database(name: str):
    """``CREATE DATABASE name`` on the test server, dropped (forcibly) afterwards; its URL."""
    import psycopg

    base = POSTGRES_URL.replace("postgres://", "postgresql://", 1)
    try:
        admin = psycopg.connect(base, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        unavailable(f"no PostgreSQL at {POSTGRES_URL}: {exc}")
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def operator_session(server: LiveServer, name: str = "operator") -> str:
    """A logged-in session id of a new user in the Operators group."""
    return server.shell(OPERATOR_SESSION.format(name=name)).split("RESULT", 1)[1].strip()


def alert_rows(server: LiveServer, device_ids: list[int]) -> list[dict]:
    """The stored alerts of these devices, read by another process (what the database holds)."""
    return json.loads(server.shell(ALERT_ROWS.format(ids=list(device_ids))).split("RESULT", 1)[1])


def fetch(server: LiveServer, path: str, session: str) -> bytes:
    request = urllib.request.Request(
        server.http_url + path, headers={"Cookie": f"sessionid={session}"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as response:
        return response.read()


class Dashboard:
    """An operator's ``/ws/alerts/`` connection that records ``(received_at, message)``."""

    def __init__(self, server: LiveServer, session: str) -> None:
        self.url = f"ws://127.0.0.1:{server.port}/ws/alerts/"
        self.session = session
        self.messages: list[tuple[float, dict]] = []
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> Dashboard:
        import websockets

        self.ws = await websockets.connect(
            self.url,
            additional_headers={"Cookie": f"sessionid={self.session}"},
            proxy=None,
            open_timeout=30,
        )
        await self.ws.send(json.dumps({"type": "ping"}))  # joined the group once it answers
        assert json.loads(await asyncio.wait_for(self.ws.recv(), 30)) == {"type": "pong"}
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc) -> None:
        self._task.cancel()
        await self.ws.close()

    async def _read(self) -> None:
        async for message in self.ws:
            self.messages.append((time.time(), json.loads(message)))

    def alerts(self, kind: str, device_id: int) -> list[tuple[float, dict]]:
        return [
            (at, m["alert"])
            for at, m in self.messages
            if m.get("type") == kind and m["alert"]["device"]["id"] == device_id
        ]

    def closing_update(self, device_id: int) -> dict | None:
        """The last ``alert.updated`` of the device that says its incident closed."""
        closed = [a for _, a in self.alerts("alert.updated", device_id) if not a["open"]]
        return closed[-1] if closed else None

    async def wait_for(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                seen = [(m.get("type"), m.get("alert", {}).get("id")) for _, m in self.messages]
                raise AssertionError(f"dashboard: {what} not received in {timeout:g} s: {seen}")
            await asyncio.sleep(0.05)


async def stream_file(
    server: LiveServer, token: str, path: Path, speed: float, timeout: float = 120
) -> dict:
    """``python -m devices.client --file path --speed X``; its closing summary (JSON)."""
    process = await asyncio.create_subprocess_exec(
        str(PYTHON),
        "-m",
        "devices.client",
        "--server",
        server.ws_url,
        "--file",
        str(path),
        "--speed",
        str(speed),
        "--name",
        "e2e-test",
        cwd=REPO,
        env={**server.env, "EYESCREAM_DEVICE_TOKEN": token},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode == 0, f"client failed ({process.returncode}): {err.decode()}"
    return json.loads(out.decode().strip().splitlines()[-1])


def read_labels(path: Path) -> list[tuple[float, float, str]]:
    """Audacity label rows ``start end label``."""
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 3:
            rows.append((float(parts[0]), float(parts[1]), parts[2].strip()))
    return rows


def locate(snippet: np.ndarray, source: np.ndarray) -> tuple[int, float]:
    """``(offset, correlation)``: where ``snippet`` best matches inside ``source``."""
    n = len(source) + len(snippet)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(source, size) * np.conj(np.fft.rfft(snippet, size)), size)
    offset = int(np.argmax(corr[: len(source) - len(snippet) + 1]))
    piece = source[offset : offset + len(snippet)]
    denom = float(np.linalg.norm(piece) * np.linalg.norm(snippet)) or 1.0
    return offset, float(np.dot(piece, snippet) / denom)
