"""Hostile names stay text, in real headless Chromium, under the site's Content-Security-Policy.

An admin can name a site, location or device anything; the map's marker popup and the placement
page's tooltips must show such a name as text. Every page carries a CSP that allows scripts from
this site only, and the pages still work under it (the map goes live).
"""

from __future__ import annotations

import json

import pytest
import requests

from tests.devices.live import LiveServer

from .test_browser_live import PASSWORD, js, login, new_browser, open_live, wait_for

pytestmark = pytest.mark.slow

HOSTILE = '<img src=x onerror="window.__xss=(window.__xss||0)+1">'

SETUP = f"""
import json
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from devices.models import Device, Location, Site
User = get_user_model()
for name, group in [("op1", "Operators"), ("boss", "Admins")]:
    User.objects.create_user(name, password={PASSWORD!r}).groups.add(Group.objects.get(name=group))
hostile = {HOSTILE!r}
site = Site.objects.create(name="Site " + hostile, latitude=37.5571, longitude=126.9245)
first = Location.objects.create(site=site, name="Place " + hostile, latitude=37.5575,
                                longitude=126.9240)
second = Location.objects.create(site=site, name="Other", latitude=37.5568, longitude=126.9251)
Device.objects.create(location=first, name="Mic " + hostile)
print("RESULT" + json.dumps({{"second": second.pk}}))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("security"), {"EYESCREAM_TILE_URL": "none"})
    live.migrate()
    live.world = json.loads(live.shell(SETUP).split("RESULT", 1)[1])
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def browser(server):
    drv = new_browser()
    yield drv
    drv.quit()


def test_every_page_carries_a_policy_that_allows_scripts_from_this_site_only(server):
    response = requests.get(f"{server.http_url}/accounts/login/", timeout=10)
    policy = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert "frame-ancestors 'none'" in policy


def test_a_hostile_device_name_in_the_map_popup_is_text(server, browser):
    login(browser, server, "op1")
    open_live(browser, f"{server.http_url}/")  # the map works under the policy
    js(browser, "document.querySelector('.leaflet-marker-icon').click()")
    popup = wait_for(
        lambda: js(
            browser,
            "const p = document.querySelector('.leaflet-popup-content'); return p && p.textContent",
        ),
        what="the marker's popup",
    )
    assert "Mic " + HOSTILE in popup and "Site " + HOSTILE in popup
    assert js(browser, "return document.querySelectorAll('.leaflet-popup-content img').length") == 0
    # The marker's label and the device list show the name as text too.
    label = js(browser, "return document.querySelector('.dev-label').textContent")
    assert label == "Mic " + HOSTILE
    assert (
        js(browser, "return document.querySelectorAll('.dev-label img, #device-list img').length")
        == 0
    )
    assert js(browser, "return window.__xss || 0") == 0


def test_a_hostile_location_name_in_the_placement_tooltip_is_text(server, browser):
    login(browser, server, "boss", next_url=f"/manage/locations/{server.world['second']}/")
    wait_for(
        lambda: (
            js(browser, "return document.querySelectorAll('path.leaflet-interactive').length") > 0
        ),
        what="the other locations on the placement map",
    )
    js(
        browser,
        "document.querySelectorAll('path.leaflet-interactive').forEach(p =>"
        " p.dispatchEvent(new MouseEvent('mouseover', {bubbles: true})))",
    )
    tooltip = wait_for(
        lambda: js(
            browser,
            "const t = document.querySelector('.leaflet-tooltip'); return t && t.textContent",
        ),
        what="a location's tooltip",
    )
    assert "Place " + HOSTILE in tooltip
    assert js(browser, "return document.querySelectorAll('.leaflet-tooltip img').length") == 0
    assert js(browser, "return window.__xss || 0") == 0


def test_the_served_site_shows_no_debug_pages(server):
    missing = requests.get(f"{server.http_url}/no-such-page/", timeout=10)
    assert missing.status_code == 404
    assert "URLconf" not in missing.text and "Traceback" not in missing.text
    assert str(server.data_dir) not in missing.text
