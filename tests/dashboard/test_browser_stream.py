"""The whole live path into the browser: the reference client streams a real scream recording
to a real daphne (embedded mode), the ingest consumer scores it, the decision logic opens an
incident, ``open_alert`` broadcasts, and the operator's map shows it without a reload.

The server scores with the shipped model (detection/shipped/default), as `make run` does: the
scream must be heard by the real detector, not by a stand-in.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime

import pytest

from tests.devices.live import PYTHON, REPO, LiveServer

from .test_browser_live import PASSWORD, js, login, new_browser, open_live, wait_for

pytestmark = pytest.mark.slow

SCREAM = "audio/screamdet-main/169810_missozzy_female-scream-01_0.flac"  # 3.4 s

SETUP = f"""
import json
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from devices import services
from devices.models import Device, Location, Site
user = get_user_model().objects.create_user("op1", password={PASSWORD!r})
user.groups.add(Group.objects.get(name="Operators"))
site = Site.objects.create(name="Hongdae station", latitude=37.5571, longitude=126.9245)
location = Location.objects.create(site=site, name="Exit 9 stairs", latitude=37.5575,
    longitude=126.9240)
device = Device.objects.create(location=location, name="stairs-mic")
print("RESULT" + json.dumps({{"id": device.pk, "token": services.issue_token(device)}}))
"""


@pytest.fixture(scope="module")
def streaming_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream")
    live = LiveServer(root / "data")
    live.migrate()
    live.device = json.loads(live.shell(SETUP).split("RESULT", 1)[1])
    live.start()
    yield live
    live.stop()


def test_streamed_scream_appears_on_the_map_and_its_snippet_plays(streaming_server, real_v1):
    server = streaming_server
    drv = new_browser()
    try:
        login(drv, server, "op1")
        open_live(drv, f"{server.http_url}/")
        client = subprocess.run(
            [
                str(PYTHON),
                "-m",
                "devices.client",
                "--server",
                server.ws_url,
                "--file",
                str(real_v1 / SCREAM),
                "--name",
                "dashboard-test",
            ],
            cwd=REPO,
            env={**server.env, "EYESCREAM_DEVICE_TOKEN": server.device["token"]},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert client.returncode == 0, client.stdout + client.stderr + server.log()
        alert_id = wait_for(
            lambda: js(drv, "return Object.keys(window.eyescreamMap.arrivals)[0]"),
            10,
            "the streamed alert on the map",
        )
        arrival = js(drv, f"return window.eyescreamMap.arrivals[{alert_id}]")
        alert = js(drv, f"return window.eyescreamMap.alerts.get({alert_id})")
        assert arrival["kind"] == "created" and alert["device"]["id"] == server.device["id"]
        created = datetime.fromisoformat(alert["created"]).timestamp()
        started = datetime.fromisoformat(alert["started_at"]).timestamp()
        latency_s = arrival["at"] / 1000 - created
        print(
            f"streamed alert {alert_id}: on the map {latency_s * 1000:.0f} ms after its row was "
            f"created, {arrival['at'] / 1000 - started:.2f} s after the incident's start"
        )
        assert latency_s < 2.0
        marker = js(drv, "return document.querySelector('.dev-marker').dataset.state")
        assert marker == "alerting"
        assert js(drv, f"return !!document.querySelector('#alert-list li[data-id=\"{alert_id}\"]')")
        drv.get(f"{server.http_url}/alerts/{alert_id}/")
        duration = wait_for(
            lambda: js(
                drv,
                "const a = document.getElementById('snippet');"
                "return a.readyState >= 1 && a.duration > 0 ? a.duration : 0",
            ),
            10,
            "the snippet of the streamed alert to load",
        )
        assert 1.0 < duration <= 20.0
    finally:
        drv.quit()
        if os.environ.get("EYESCREAM_KEEP_LOGS"):
            print(server.log())
