"""Fixtures of the notification tests: a site with a device, local receivers (HTTP, MQTT)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from getpass import getuser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from devices.models import Device, Location, Site
from notifications.models import Destination

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto")


@pytest.fixture
def settings_for_delivery(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EYESCREAM_ALERT_IMAGES = False
    settings.EYESCREAM_PUBLIC_URL = "https://eyescream.example"
    settings.EYESCREAM_DELIVERY_TIMEOUT_S = 2.0
    settings.EYESCREAM_DELIVERY_ATTEMPTS = 3
    settings.EYESCREAM_DELIVERY_BACKOFF_S = 0.05
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return settings


@pytest.fixture
def inline(settings_for_delivery):
    settings_for_delivery.EYESCREAM_EAGER_TASKS_INLINE = True
    return settings_for_delivery


@pytest.fixture
def device(db):
    site = Site.objects.create(name="Central Station", latitude=52.52, longitude=13.40)
    location = Location.objects.create(site=site, name="Platform 3", latitude=52.5201)
    return Device.objects.create(location=location, name="mic-3a")


def destination(device, kind: str, **fields) -> Destination:
    fields.setdefault("name", kind)
    row = Destination(site=device.location.site, kind=kind, **fields)
    row.full_clean()
    row.save()
    return row


def wait_for(predicate, timeout: float = 15.0, pause: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(pause)
    raise AssertionError(f"not true within {timeout} s: {predicate}")


# ------------------------------------------------------------------------------- HTTP


class Receiver:
    """A local webhook receiver: answers each POST with the next of ``statuses`` (then 200),
    or first sleeps ``delay_s``; keeps what it got."""

    def __init__(self, statuses=(), delay_s: float = 0.0) -> None:
        self.statuses, self.delay_s = list(statuses), delay_s
        self.requests: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                try:
                    self.send_response(status)
                    self.end_headers()
                    self.wfile.write(b"nope" if status >= 400 else b"ok")
                except OSError:  # the sender timed out and went away
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def messages(self) -> list[dict]:
        return [json.loads(body) for _headers, body in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(statuses=(), delay_s: float = 0.0) -> Receiver:
        made.append(Receiver(statuses, delay_s))
        return made[-1]

    yield make
    for one in made:
        one.close()


# ------------------------------------------------------------------------------- MQTT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or next(
        (p for p in MOSQUITTO_PATHS if Path(p).is_file()), None
    )
    if not found:
        pytest.fail("mosquitto is not installed (apt-get install mosquitto; .ci/run does)")
    return found


class Broker:
    def __init__(self, folder: Path, users: dict[str, str] | None = None) -> None:
        self.port = free_port()
        # As root, mosquitto drops to its own user, who could not read the password file here.
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", f"user {getuser()}"]
        if users:
            passwords = folder / "passwords"
            passwords.touch()
            for user, password in users.items():
                subprocess.run(
                    ["mosquitto_passwd", "-b", str(passwords), user, password], check=True
                )
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines += ["allow_anonymous true"]
        config = folder / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n")
        self.process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    error = self.process.stderr.read()
                    raise RuntimeError(f"mosquitto did not start: {error}") from None
                time.sleep(0.05)
        self.url = f"mqtt://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def mosquitto(tmp_path):
    made = []

    def start(users: dict[str, str] | None = None) -> Broker:
        folder = tmp_path / f"broker{len(made)}"
        folder.mkdir()
        made.append(Broker(folder, users))
        return made[-1]

    yield start
    for broker in made:
        broker.stop()
