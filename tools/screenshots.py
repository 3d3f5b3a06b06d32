"""``python -m tools.screenshots`` (``make screenshots``): the README's screenshots, taken in
headless Chromium from the running app with the demo data.

It serves the app in embedded mode from a temporary data folder (``manage.py migrate`` and
``seed_demo``; no tiles, so nothing is fetched from the internet), stores a few alerts cut from
the real recordings (``EYESCREAM_DATASETS``, default ``../shared/datasets``: ``real-v1``) with
their pictures, reviews some of them, and writes to ``docs/screenshots/`` (or ``--out``):

| file | page | window |
|---|---|---|
| ``map-live-alert.png`` | live map with an alert waiting | desktop 1280×800 |
| ``review.png`` | one alert's review page | desktop 1280×1250 |
| ``queue.png`` | the review queue (all alerts) | desktop 1280×800 |
| ``manage.png`` | sites, locations and devices (admin) | desktop 1280×800 |
| ``phone-map.png``, ``phone-review.png``, ``phone-queue.png`` | the same on a phone | 390×844 |
| ``map-dark.png``, ``review-dark.png`` | dark theme (``prefers-color-scheme: dark``) | desktop |
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SCREAM = "audio/screamdet-main/319258_ramston_woman-screaming-of-fear.flac"

# Alerts as a night shift would see them: (device, minutes ago, scream seconds, verdict, note).
DEMO_ALERTS = """
import json, numpy as np, soundfile
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from alerts.models import Alert
from alerts.reviews import review_alert
from alerts.services import open_alert
from alerts.tasks import render_alert_image
from devices.models import Device
audio, rate = soundfile.read({path!r}, dtype="float32")
audio = audio if audio.ndim == 1 else audio.mean(axis=1)
onset, end = {onset}, {end}
start = max(0.0, onset - 2.0)
snippet = audio[int(start * rate): int(min(len(audio) / rate, end + 1.0) * rate)]
curve = [[onset - start + 0.25 * i, min(0.97, 0.5 + 0.06 * i)]
         for i in range(int((end - onset) * 4))]
operator = get_user_model().objects.get(username="operator")
ids = []
for name, minutes, label, note, still_open in {alerts!r}:
    device = Device.objects.get(name=name)
    now = timezone.now() - timedelta(minutes=minutes)
    alert = open_alert(device_id=device.pk, started_at=now - timedelta(seconds=end - onset),
        peak_score=0.97, mean_score=0.84, score_curve=curve, model_version="demo",
        snippet=snippet, snippet_rate=rate,
        snippet_started_at=now - timedelta(seconds=end - start))
    if not still_open:
        Alert.objects.filter(pk=alert.pk).update(ended_at=now)
    render_alert_image(alert.pk)
    if label:
        review_alert(alert.pk, operator, label, note)
    ids.append(alert.pk)
print("RESULT" + json.dumps(ids))
"""
ALERTS = [
    ("parking-b-mic", 95, "0_0", "football fans cheering", False),
    ("alley-3-mic", 61, "1", "woman screaming, patrol sent", False),
    ("restroom-mic", 23, "0_1", "siren passing", False),
    ("restroom-mic", 6, "", "", False),
    ("alley-3-mic", 0.2, "", "", True),
]
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}


def datasets() -> Path:
    root = Path(os.environ.get("EYESCREAM_DATASETS", REPO.parent / "shared" / "datasets"))
    path = root / "real-v1"
    if not (path / SCREAM).exists():
        sys.exit(f"the real recordings are needed: {path / SCREAM} is missing")
    return path


def incident(real_v1: Path) -> tuple[float, float]:
    """A few seconds of screaming: the first labelled scream's onset to the end of the last
    scream that ends within 4.5 s of it."""
    screams = []
    for line in (real_v1 / SCREAM).with_suffix(".txt").read_text().splitlines():
        start, end, label = line.split("\t")
        if label.strip() == "1":
            screams.append((float(start), float(end)))
    if not screams:
        raise SystemExit(f"no scream label in {SCREAM}")
    onset = screams[0][0]
    return onset, max(end for _, end in screams if end <= onset + 4.5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    """The app in embedded mode on a free port, with its own data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")},
            "EYESCREAM_DATA_DIR": str(data_dir),
            "DJANGO_SETTINGS_MODULE": "eyescream_site.settings",
            "EYESCREAM_TILE_URL": "none",  # no internet: the map's plain grid
            "EYESCREAM_ALARM_REPEAT_S": "0",
        }
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [str(BIN / "python"), "manage.py", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode:
            raise SystemExit(f"manage.py {args[0]} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def shell(self, code: str) -> str:
        return self.manage("shell", "--no-imports", "-c", code)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(self.port)]
            + ["eyescream_site.asgi:application"],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("the app did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chrome, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chrome and driver):
        raise SystemExit(
            "chromium and chromedriver are needed (apt-get install chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chrome
    options.page_load_strategy = "eager"
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--hide-scrollbars",
        "--window-size=1280,800",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(flag)
    drv = webdriver.Chrome(service=Service(driver), options=options)
    drv.set_page_load_timeout(30)
    return drv


def wait(drv, script: str, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not drv.execute_script(script):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def login(drv, app: App, username: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    drv.delete_all_cookies()
    drv.get(f"{app.url}/accounts/login/")
    drv.find_element(By.ID, "id_username").send_keys(username)
    drv.find_element(By.ID, "id_password").send_keys(password)
    drv.find_element(By.ID, "login-submit").click()
    wait(drv, "return !location.pathname.startsWith('/accounts/login/')", "the login")


def show(drv, url: str, ready: str = "return document.readyState === 'complete'") -> None:
    drv.get(url)
    wait(drv, ready, url)
    time.sleep(0.8)  # markers placed, fonts drawn, the banner latched


LIVE = "const e = document.getElementById('live-state'); return e && e.textContent === 'live'"
PICTURE = (
    "const i = document.getElementById('spectrogram');"
    "const a = document.getElementById('snippet');"
    "return i && !i.hidden && i.complete && i.naturalWidth > 0 && a.readyState >= 1"
)


def take(out: Path) -> list[Path]:
    real_v1 = datasets()
    onset, end = incident(real_v1)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="eyescream-screenshots-") as data_dir:
        app = App(Path(data_dir))
        app.manage("migrate", "--noinput", "-v", "0")
        app.manage("seed_demo")
        passwords = {name: secrets.token_urlsafe(12) for name in ("admin", "operator")}
        app.shell(
            "from django.contrib.auth import get_user_model\n"
            f"for name, password in {passwords!r}.items():\n"
            "    user = get_user_model().objects.get(username=name)\n"
            "    user.set_password(password)\n"
            "    user.save()"
        )
        path = str(real_v1 / SCREAM)
        code = DEMO_ALERTS.format(path=path, onset=onset, end=end, alerts=ALERTS)
        ids = json.loads(app.shell(code).split("RESULT", 1)[1])
        review_id = ids[-2]  # waiting for review, its picture drawn
        app.start()
        drv = chromium()
        try:

            def shot(name: str) -> None:
                path = out / name
                if not drv.save_screenshot(str(path)):
                    raise SystemExit(f"could not write {path}")
                written.append(path)

            login(drv, app, "operator", passwords["operator"])
            show(drv, f"{app.url}/", LIVE)
            shot("map-live-alert.png")
            show(drv, f"{app.url}/alerts/?status=all", LIVE)
            shot("queue.png")
            drv.set_window_size(1280, 1250)
            show(drv, f"{app.url}/alerts/{review_id}/", PICTURE)
            shot("review.png")
            drv.execute_cdp_cmd(
                "Emulation.setEmulatedMedia",
                {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
            )
            show(drv, f"{app.url}/alerts/{review_id}/", PICTURE)
            shot("review-dark.png")
            drv.set_window_size(1280, 800)
            show(drv, f"{app.url}/", LIVE)
            shot("map-dark.png")
            drv.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
            drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
            show(drv, f"{app.url}/", LIVE)
            shot("phone-map.png")
            show(drv, f"{app.url}/alerts/?status=all", LIVE)
            shot("phone-queue.png")
            show(drv, f"{app.url}/alerts/{review_id}/", PICTURE)
            shot("phone-review.png")
            drv.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
            login(drv, app, "admin", passwords["admin"])
            show(drv, f"{app.url}/manage/")
            shot("manage.png")
        finally:
            drv.quit()
            app.stop()
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.screenshots", description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args(argv)
    for path in take(args.out):
        print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
