"""A real daphne on a free port with its own database, for end-to-end device tests."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"
DAPHNE = REPO / ".venv" / "bin" / "daphne"


def stop_process(process: subprocess.Popen | None, kill: bool = False) -> None:
    """SIGTERM (or SIGKILL) a child process and reap it; SIGKILL if it outlives 10 s."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def child_pids(pid: int) -> list[int]:
    """The processes ``pid`` started (for daphne: its alert writers and their resource tracker)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in read_task_file(task, "children").split()]
    return sorted(children)


def read_task_file(task: Path, name: str) -> str:
    """A file of one thread's ``/proc`` folder; "" when the thread ended since it was listed."""
    try:
        return (task / name).read_text()
    except (FileNotFoundError, ProcessLookupError):
        return ""


SCHED_IDLE = 5  # Linux's number for the policy in /proc/PID/task/TID/stat


def thread_stats(pid: int, field: int) -> list[int]:
    """Field ``field`` (as ``man 5 proc`` numbers them) of each thread of ``pid``."""
    values = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        stat = read_task_file(task, "stat")
        if stat:
            values.append(int(stat.rsplit(")", 1)[1].split()[field - 3]))
    return values


def thread_nices(pid: int) -> list[int]:
    return thread_stats(pid, 19)


def thread_policies(pid: int) -> list[int]:
    return thread_stats(pid, 41)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``daphne eyescream_site.asgi:application`` as a subprocess, plus ``manage.py`` helpers."""

    def __init__(self, data_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "EYESCREAM_DATA_DIR": str(self.data_dir),
            "DJANGO_SETTINGS_MODULE": "eyescream_site.settings",
            "PYTHONUNBUFFERED": "1",
            # Map tiles from this server, which has none: a browser test fetches nothing from
            # the internet (the map shows its plain grid and says tiles are unavailable).
            "EYESCREAM_TILE_URL": "/no-tiles/{z}/{x}/{y}.png",
            **(extra_env or {}),
        }
        for name in ("REDIS_URL", "DATABASE_URL"):
            if not (extra_env or {}).get(name):
                self.env.pop(name, None)
        if self.env.get("REDIS_URL") and self.env.get("DATABASE_URL"):
            # The scaled mode refuses to start without its secrets; this server is plain HTTP
            # on the loopback, so its cookies may not require HTTPS.
            for name in ("DJANGO_SECRET_KEY", "EYESCREAM_DEVICE_TOKEN_KEY"):
                self.env.setdefault(name, secrets.token_urlsafe(50))
            self.env.setdefault("EYESCREAM_HTTPS", "0")
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = self.data_dir / "daphne.log"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/devices/stream/"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str, timeout: float = 60) -> str:
        result = subprocess.run(
            [str(PYTHON), "manage.py", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def shell(self, code: str) -> str:
        return self.manage("shell", "--no-imports", "-c", code)

    def migrate(self) -> None:
        self.manage("migrate", "--noinput", "-v", "0")

    def start(self, timeout: float = 30) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 (closed with the process)
        self.process = subprocess.Popen(
            [
                str(DAPHNE),
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "eyescream_site.asgi:application",
            ],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited early:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"daphne did not listen on {self.port}:\n{self.log()}")

    def stop(self, kill: bool = False) -> None:
        stop_process(self.process, kill)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # ------------------------------------------------------------------ data helpers

    def make_devices(self, specs: dict[str, dict]) -> dict[str, dict]:
        """Create devices ``{name: {enabled, expired, token}}``; return ``{name: {id, token}}``."""
        code = f"""
import json
from datetime import timedelta
from django.utils import timezone
from devices.models import Device, Location, Site
from devices import services
site, _ = Site.objects.get_or_create(name="Test site")
location, _ = Location.objects.get_or_create(site=site, name="Test spot")
out = {{}}
for name, spec in json.loads({json.dumps(json.dumps(specs))}).items():
    device = Device.objects.create(location=location, name=name, enabled=spec.get("enabled", True))
    expires = timezone.now() - timedelta(hours=1) if spec.get("expired") else None
    token = services.issue_token(device, expires=expires)
    out[name] = {{"id": device.pk, "token": token}}
print("RESULT" + json.dumps(out))
"""
        return json.loads(self.shell(code).split("RESULT", 1)[1])

    def device_row(self, device_id: int, offline_within_s: float = 0.0) -> dict:
        """The device's row. ``offline_within_s``: first wait (up to that long) for the server
        to mark it offline — a client sees its socket close before the server's disconnect
        handler has written the row."""
        code = f"""
import json, time
from django.forms.models import model_to_dict
from devices.models import Device
deadline = time.monotonic() + {offline_within_s}
d = Device.objects.get(pk={device_id})
while d.connection_state != Device.OFFLINE and time.monotonic() < deadline:
    time.sleep(0.05)
    d = Device.objects.get(pk={device_id})
row = model_to_dict(d)
row.update(samples_received=d.samples_received, connection_state=d.connection_state)
print("RESULT" + json.dumps(row, default=str))
"""
        return json.loads(self.shell(code).split("RESULT", 1)[1])

    def make_user(self, username: str, password: str, group: str = "Operators") -> None:
        self.shell(
            "from django.contrib.auth.models import Group, User\n"
            f"user = User.objects.create_user({username!r}, password={password!r})\n"
            f"user.groups.add(Group.objects.get(name={group!r}))"
        )

    def login(self, username: str, password: str, path: str = "/accounts/login/"):
        """A ``requests.Session`` logged in through the login form at ``path``."""
        session = requests.Session()
        page = session.get(f"{self.http_url}{path}")
        response = session.post(
            page.url,
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            headers={"Referer": page.url},
        )
        if "sessionid" not in session.cookies:
            raise RuntimeError(f"login as {username} failed: {response.status_code}")
        return session

    def sample_levels(self, device_id: int, count: int, interval_s: float = 1.0) -> list[float]:
        """``level_dbfs`` of the device read ``count`` times, ``interval_s`` apart (one process)."""
        code = f"""
import json, time
from devices.models import Device
out = []
for _ in range({count}):
    time.sleep({interval_s})
    level = Device.objects.get(pk={device_id}).level_dbfs
    if level is not None:
        out.append(level)
print("RESULT" + json.dumps(out))
"""
        return json.loads(self.shell(code).split("RESULT", 1)[1])


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MB (``VmRSS`` of ``/proc/PID/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def run_module(module: str, *args: str, env: dict[str, str], timeout: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
