"""The reference client against a real daphne: exactly-once delivery across a server kill."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest
import soundfile

from .live import REPO, LiveServer

CLIP = "audio/cats-dogs/cat_1.flac"  # 10 s of real audio


def client(server: LiveServer, token: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "EYESCREAM_DEVICE_TOKEN": token}
    return subprocess.Popen(
        [sys.executable, "-m", "devices.client", "--server", server.ws_url, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_client_refuses_cleanly_with_a_bad_token(live, real_v1):
    proc = client(live, "esd_" + "n" * 43, "--file", str(real_v1 / CLIP))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "4010 bad_token" in err


def test_client_needs_neither_django_nor_torch():
    code = (
        "import sys, devices.client.cli, devices.client.streamer, devices.client.sources;"
        "bad = [m for m in ('django', 'torch', 'channels') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_kill_and_restart_mid_stream_loses_and_doubles_nothing(tmp_path, real_v1):
    path = real_v1 / CLIP
    total = soundfile.info(str(path)).frames
    server = LiveServer(tmp_path / "server")
    server.migrate()
    device = server.make_devices({"pi": {}})["pi"]
    server.start()
    try:
        proc = client(server, device["token"], "--file", str(path), "--speed", "1", "-v")
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
        reader.start()
        deadline = time.monotonic() + 30
        while not any("streaming from sample" in line for line in lines):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
            time.sleep(0.05)
        # Mid-stream: some audio stored and acked (however slow the host), more in flight; at
        # real time (--speed 1) the stream still runs seconds after its first ack on a busy host.
        while server.device_row(device["id"])["stream_samples"] == 0:
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
        server.stop(kill=True)  # SIGKILL: nothing is flushed on the way out
        time.sleep(1.0)
        server.start()
        out = proc.stdout.read()
        proc.wait(timeout=60)
        reader.join(timeout=5)
        err = "".join(lines)
        assert proc.returncode == 0, err
        summary = json.loads(out.strip().splitlines()[-1])
        row = server.device_row(device["id"])
    finally:
        server.stop()
    assert summary["connections"] >= 2, err
    resumed = [int(x) for x in re.findall(r"streaming from sample (\d+)", err)]
    assert len(resumed) >= 2 and resumed[-1] > 0, err  # the second connection resumed
    assert summary["captured_samples"] == total
    assert summary["acked_samples"] == total and summary["dropped_samples"] == 0
    assert row["samples_received"] == total  # nothing lost, nothing doubled
    assert row["seconds_received"] == pytest.approx(total / summary["rate"])


@pytest.mark.slow
def test_a_disabled_device_waits_and_resumes_when_enabled_losing_nothing(live, real_v1):
    path = real_v1 / CLIP
    total = soundfile.info(str(path)).frames
    # Disabled from the start: the hello is refused with 4013 (as a stream is closed with it
    # when the device is disabled mid-stream); the file's audio is captured meanwhile.
    device = live.make_devices({"pi-disabled": {"enabled": False}})["pi-disabled"]
    proc = client(
        live, device["token"], "--file", str(path), "--speed", "1", "--disabled-retry-s", "1"
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    switch = (
        "from devices.models import Device\nd = Device.objects.get(pk={})\nd.enabled = {}\nd.save()"
    )
    while not any("disabled" in line for line in lines):
        assert time.monotonic() < deadline, "".join(lines)
        assert proc.poll() is None, "the client gave up on a disabled device\n" + "".join(lines)
        time.sleep(0.1)
    time.sleep(2.5)  # at least one more try while still disabled (1 s, then 2 s)
    assert proc.poll() is None, "".join(lines)
    live.shell(switch.format(device["id"], True))
    out = proc.stdout.read()
    proc.wait(timeout=90)
    reader.join(timeout=5)
    err = "".join(lines)
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert "4013 device_disabled" in err and "an admin must enable it" in err
    assert summary["disabled"] >= 2, err  # asked again while disabled, with back-off
    assert summary["connections"] >= 1  # streamed on its own once enabled
    assert summary["acked_samples"] == total and summary["dropped_samples"] == 0
    row = live.device_row(device["id"])
    assert row["samples_received"] == total  # the audio captured while disabled was kept


@pytest.mark.slow
def test_a_device_disabled_mid_stream_waits_then_resumes_where_the_server_left_off(live, real_v1):
    device = live.make_devices({"pi-paused": {}})["pi-paused"]
    proc = client(
        live,
        device["token"],
        "--file",
        str(real_v1 / CLIP),
        "--loop",
        "--disabled-retry-s",
        "1",
        "-v",
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    switch = (
        "from devices.models import Device\nd = Device.objects.get(pk={})\nd.enabled = {}\nd.save()"
    )
    try:
        deadline = time.monotonic() + 90
        while live.device_row(device["id"])["stream_samples"] == 0:
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
        live.shell(switch.format(device["id"], False))  # closes the live stream with 4013
        while not any("4013 device_disabled" in line for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            assert proc.poll() is None, "the client gave up\n" + "".join(lines)
            time.sleep(0.1)
        stored = live.device_row(device["id"])["stream_samples"]
        live.shell(switch.format(device["id"], True))
        while live.device_row(device["id"])["stream_samples"] <= stored:
            assert time.monotonic() < deadline, "".join(lines)
            assert proc.poll() is None, "".join(lines)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        reader.join(timeout=5)
    err = "".join(lines)
    resumed = [int(x) for x in re.findall(r"streaming from sample (\d+)", err)]
    assert len(resumed) >= 2 and resumed[-1] >= stored > 0, err  # resumed, not restarted
