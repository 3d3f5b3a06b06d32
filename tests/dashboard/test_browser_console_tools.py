"""The operator console's tools in real headless Chromium against a real daphne: bulk
acknowledge, search and CSV export of the review queue; per-site local time; device admin in
``/manage/``; a disabled device's page; the map without tiles; the browser device page's
remembered token."""

from __future__ import annotations

import csv
import io
import json

import pytest
import requests

from tests.dashboard.test_browser_console import chromium
from tests.dashboard.test_browser_live import SCREAM, SETUP, js, login, open_live, shot, wait_for
from tests.devices.live import LiveServer

pytestmark = pytest.mark.slow

REDIS_URL = "redis://127.0.0.1:6379/10"  # a database of its own: no other test's "alerts" group


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    flush_redis()
    # LiveServer's tiles come from itself, where there are none (404): a tile server that
    # fails, with no request leaving the machine.
    live = LiveServer(tmp_path_factory.mktemp("console-tools"), {"REDIS_URL": REDIS_URL})
    live.migrate()
    live.world = json.loads(live.shell(SETUP).split("RESULT", 1)[1])
    live.start()
    yield live
    live.stop()
    flush_redis()


@pytest.fixture(scope="module")
def browser(server):
    drv = chromium(autoplay=True)
    yield drv
    drv.quit()


MAKE_ALERTS = """
import json
from datetime import timedelta
from django.utils import timezone
from alerts.models import Alert
from devices.models import Device
ids = []
for minutes, name in {specs!r}:
    d = Device.objects.select_related("location__site").get(name=name)
    ids.append(Alert.objects.create(device=d, device_name=d.name,
        site_name=d.location.site.name, location_name=d.location.name,
        latitude=d.location.latitude, longitude=d.location.longitude,
        started_at=timezone.now() - timedelta(minutes=minutes),
        peak_score=0.9, mean_score=0.8, model_version="browser-test").pk)
print("RESULT" + json.dumps(ids))
"""


def run(server, code: str):
    return json.loads(server.shell(code).split("RESULT", 1)[1])


def make_alerts(server, *specs: tuple[float, str]) -> list[int]:
    return run(server, MAKE_ALERTS.format(specs=list(specs)))


def session_of(drv) -> dict:
    return {"sessionid": drv.get_cookie("sessionid")["value"]}


def row_ids(drv) -> list[int]:
    return js(
        drv,
        "return [...document.querySelectorAll('#alert-table tr[data-id]')]"
        ".map(tr => Number(tr.dataset.id))",
    )


def test_the_queue_is_searched_exported_and_acknowledged_in_bulk(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    stairs_a, restroom, stairs_b = make_alerts(
        server, (30, "stairs-mic"), (20, "restroom-mic"), (10, "stairs-mic")
    )
    login(browser, server, "op1", "/alerts/")
    # Search: the device's name (part of it, any case) narrows the list; the export link
    # carries the same filters and exports exactly the rows listed.
    browser.get(f"{server.http_url}/alerts/?status=all")
    wait_for(lambda: browser.find_elements(By.ID, "filters"), what="the queue")
    browser.find_element(By.NAME, "device_name").send_keys("RESTROOM")
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    wait_for(lambda: "device_name=RESTROOM" in browser.current_url, what="the filtered queue")
    listed = row_ids(browser)
    assert restroom in listed and stairs_a not in listed and stairs_b not in listed
    href = browser.find_element(By.ID, "export").get_attribute("href")
    assert "device_name=RESTROOM" in href and "status=all" in href
    answer = requests.get(href, cookies=session_of(browser), timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [int(r["id"]) for r in rows] == listed
    assert {r["device"] for r in rows} == {"restroom-mic"}

    # Bulk acknowledge: tick two rows, one verdict and one reason for both.
    open_live(browser, f"{server.http_url}/alerts/")
    for alert_id in (stairs_a, stairs_b):
        browser.find_element(By.CSS_SELECTOR, f"input.pick[value='{alert_id}']").click()
    assert browser.find_element(By.ID, "selected-count").text == "2"
    Select(browser.find_element(By.ID, "bulk-label")).select_by_value("0_1")
    browser.find_element(By.ID, "bulk-note").send_keys("fire drill siren")
    browser.find_element(By.ID, "bulk-submit").click()
    wait_for(
        lambda: "2 alert(s) marked" in js(browser, "return document.body.textContent"),
        10,
        "the bulk verdict's message",
    )
    assert (
        js(browser, "return location.pathname") == "/alerts/"
    )  # redirected: a reload posts nothing
    after = row_ids(browser)
    assert stairs_a not in after and stairs_b not in after and restroom in after
    stored = run(
        server,
        "import json\nfrom alerts.models import Review\nfrom accounts.models import AuditEvent\n"
        f"ids = [{stairs_a}, {stairs_b}]\n"
        "reviews = sorted((r.alert_id, r.user.username, r.label, r.note, r.alert.status)"
        " for r in Review.objects.filter(alert__in=ids))\n"
        "events = sorted(e.object_id for e in AuditEvent.objects.filter(action='review',"
        " object_id__in=[str(i) for i in ids]))\n"
        "print('RESULT' + json.dumps([reviews, events]))",
    )
    assert stored[0] == [
        [stairs_a, "op1", "0_1", "fire drill siren", "dismissed"],
        [stairs_b, "op1", "0_1", "fire drill siren", "dismissed"],
    ]
    assert stored[1] == sorted([str(stairs_a), str(stairs_b)])
    # Searched by reviewer and verdict, the two come back.
    browser.get(f"{server.http_url}/alerts/?status=all&reviewer=op1&label=0_1")
    wait_for(lambda: browser.find_elements(By.ID, "alert-table"), what="the queue")
    assert sorted(row_ids(browser)) == sorted([stairs_a, stairs_b])
    shot(browser, "queue-bulk.png")


def test_times_show_in_the_sites_zone_with_the_zone_named(server, browser):
    from selenium.webdriver.common.by import By

    run(
        server,
        "from devices.models import Site\n"
        f"Site.objects.filter(pk={server.world['site']}).update(time_zone='Asia/Seoul')\n"
        "print('RESULT1')",
    )
    (alert,) = make_alerts(server, (5, "stairs-mic"))
    started = run(
        server,
        f"import json\nfrom alerts.models import Alert\na = Alert.objects.get(pk={alert})\n"
        "from zoneinfo import ZoneInfo\n"
        "print('RESULT' + json.dumps(a.started_at.astimezone(ZoneInfo('Asia/Seoul'))"
        ".strftime('%Y-%m-%d %H:%M:%S')))",
    )
    login(browser, server, "op1")
    open_live(browser, f"{server.http_url}/")
    when = wait_for(
        lambda: js(
            browser,
            f"const li = document.querySelector('#alert-list li[data-id=\"{alert}\"] .when');"
            "return li && li.textContent",
        ),
        10,
        "the alert on the map",
    )
    assert when.startswith(started[11:]) and ("GMT+9" in when or "KST" in when), when
    browser.get(f"{server.http_url}/alerts/?status=all")
    cell = browser.find_element(By.CSS_SELECTOR, f"tr[data-id='{alert}'] time")
    assert cell.text == f"{started} KST" and cell.get_attribute("title") == "Asia/Seoul"
    browser.get(f"{server.http_url}/alerts/{alert}/")
    zone = wait_for(lambda: browser.find_elements(By.ID, "time-zone"), what="the alert page")
    assert zone[0].text == "Asia/Seoul, the site's local time"
    assert f"{started} KST" in browser.find_element(By.CSS_SELECTOR, ".facts").text


def audit_actions(server, object_type: str) -> list[list[str]]:
    return run(
        server,
        "import json\nfrom accounts.models import AuditEvent\n"
        f"rows = AuditEvent.objects.filter(object_type={object_type!r}).order_by('pk')\n"
        "print('RESULT' + json.dumps([[e.actor_name, e.action, e.object_name] for e in rows]))",
    )


def test_an_admin_places_a_floor_plan_moves_and_deletes_a_device_with_confirmation(server, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    site = server.world["site"]
    made = run(
        server,
        "import json\nfrom devices.models import Device, Location\n"
        f"loc = Location.objects.create(site_id={site}, name='Spare room')\n"
        "d = Device.objects.create(location=Location.objects.get(name='Exit 9 stairs'),"
        " name='spare-mic')\n"
        "print('RESULT' + json.dumps([loc.pk, d.pk]))",
    )
    spare_room, spare_mic = made
    login(browser, server, "boss", "/manage/")

    # Floor-plan bounds on the map: placed over the view, one corner dragged, no JSON typed.
    browser.get(f"{server.http_url}/manage/sites/{site}/")
    wait_for(lambda: js(browser, "return !!window.eyescreamPlace"), what="the site's map")
    browser.find_element(By.ID, "bounds-fit").click()
    placed = json.loads(browser.find_element(By.ID, "id_floor_plan_bounds").get_attribute("value"))
    (south, west), (north, east) = placed
    assert north > south and east > west
    corner = browser.find_elements(By.CSS_SELECTOR, ".corner-marker")[1]  # north-east
    ActionChains(browser).drag_and_drop_by_offset(corner, 60, -40).perform()
    dragged = wait_for(
        lambda: (
            json.loads(browser.find_element(By.ID, "id_floor_plan_bounds").get_attribute("value"))
            != placed
            and json.loads(
                browser.find_element(By.ID, "id_floor_plan_bounds").get_attribute("value")
            )
        ),
        5,
        "the dragged corner to change the bounds",
    )
    assert dragged[0] == placed[0]  # the south-west corner stayed
    assert dragged[1][0] > north and dragged[1][1] > east  # dragged up and right
    assert "north" in browser.find_element(By.ID, "bounds-text").text
    shot(browser, "manage-floor-plan-bounds.png")
    browser.find_element(By.ID, "save").click()
    wait_for(lambda: js(browser, "return location.pathname") == "/manage/", what="the save")
    stored = run(
        server,
        "import json\nfrom devices.models import Site\n"
        f"print('RESULT' + json.dumps(Site.objects.get(pk={site}).floor_plan_bounds))",
    )
    assert stored == dragged

    # Move the device, then delete it from its confirmation page.
    browser.get(f"{server.http_url}/manage/devices/{spare_mic}/")
    browser.find_element(By.ID, "edit").click()
    wait_for(lambda: browser.find_elements(By.ID, "device-form"), what="the edit page")
    Select(browser.find_element(By.ID, "id_location")).select_by_value(str(spare_room))
    browser.find_element(By.ID, "save").click()
    wait_for(lambda: "Spare room" in browser.find_element(By.ID, "health").text, what="the move")
    browser.find_element(By.ID, "delete").click()
    wait_for(lambda: browser.find_elements(By.ID, "confirm-delete"), what="the confirmation")
    assert js(browser, "return location.pathname") == f"/manage/devices/{spare_mic}/delete/"
    assert "Delete device spare-mic?" in browser.find_element(By.TAG_NAME, "h1").text
    browser.find_element(By.ID, "confirm").click()
    wait_for(lambda: js(browser, "return location.pathname") == "/manage/", what="the delete")
    assert "Deleted device spare-mic." in browser.find_element(By.CSS_SELECTOR, ".messages").text
    browser.refresh()  # POST-redirect-GET: a reload deletes nothing more and says nothing again
    assert "spare-mic" not in browser.find_element(By.TAG_NAME, "main").text
    # The empty room is deleted the same way.
    browser.get(f"{server.http_url}/manage/locations/{spare_room}/delete/")
    browser.find_element(By.ID, "confirm").click()
    wait_for(lambda: js(browser, "return location.pathname") == "/manage/", what="the delete")
    assert audit_actions(server, "devices.device") == [
        ["boss", "change", "spare-mic"],
        ["boss", "delete", "spare-mic"],
    ]
    assert audit_actions(server, "devices.location")[-1] == [
        "boss",
        "delete",
        "Hongdae station / Spare room",
    ]
    assert ["boss", "change", "Hongdae station"] in audit_actions(server, "devices.site")


def test_when_tiles_fail_the_map_says_so_and_still_shows_every_device(server, browser):
    login(browser, server, "op1")
    open_live(browser, f"{server.http_url}/")
    status = wait_for(
        lambda: js(
            browser,
            "const s = document.getElementById('tile-status');"
            "return s && !s.hidden && s.textContent",
        ),
        15,
        "the tiles-unavailable notice",
    )
    assert "Map tiles are unavailable" in status and "plain grid" in status
    assert js(browser, "return document.getElementById('map').classList.contains('no-tiles')")
    boxes = js(
        browser,
        "const m = document.getElementById('map').getBoundingClientRect();"
        "return [...document.querySelectorAll('.dev-marker')].map(e => {"
        " const r = e.getBoundingClientRect();"
        " return r.left >= m.left && r.right <= m.right && r.top >= m.top && r.bottom <= m.bottom;"
        "})",
    )
    assert len(boxes) == len(server.world["devices"]) and all(boxes)  # placed, in view
    grid = js(browser, "return getComputedStyle(document.getElementById('map')).backgroundImage")
    assert "linear-gradient" in grid
    shot(browser, "map-no-tiles.png")


LONG_ALERT = """
import json, numpy as np, soundfile
from datetime import timedelta
from django.utils import timezone
from alerts.services import open_alert
audio, rate = soundfile.read({path!r}, dtype="float32")
audio = audio if audio.ndim == 1 else audio.mean(axis=1)
snippet = np.tile(audio, int(np.ceil({seconds} * rate / len(audio))))[: int({seconds} * rate)]
now = timezone.now()
alert = open_alert(device_id={device}, started_at=now - timedelta(seconds={seconds} - 3),
    peak_score=0.97, mean_score=0.86, score_curve=[[2.0, 0.9], [{seconds} - 1.5, 0.9]],
    model_version="browser-test", snippet=snippet, snippet_rate=rate,
    snippet_started_at=now - timedelta(seconds={seconds}))
print("RESULT" + json.dumps(alert.pk))
"""


def test_a_long_incidents_snippet_plays_whole_on_the_review_page(server, browser, real_v1):
    seconds = 34.0  # a 31 s incident with its pre- and post-roll: past the old 20 s cap
    alert = run(
        server,
        LONG_ALERT.format(
            path=str(real_v1 / SCREAM),
            seconds=seconds,
            device=server.world["devices"]["stairs-mic"],
        ),
    )
    login(browser, server, "op1", f"/alerts/{alert}/")
    duration = wait_for(
        lambda: js(
            browser,
            "const a = document.getElementById('snippet');"
            "return a && a.readyState >= 1 && a.duration > 0 ? a.duration : 0",
        ),
        15,
        "the snippet to load",
    )
    assert duration == pytest.approx(seconds, abs=0.05)
    js(browser, f"document.getElementById('snippet').currentTime = {seconds - 2}")
    wait_for(
        lambda: js(
            browser,
            "const a = document.getElementById('snippet');"
            f"return !a.seeking && a.currentTime > {seconds - 2.5}",
        ),
        5,
        "a seek into the incident's last seconds",
    )
