"""The dashboard in real headless Chromium against a real daphne, with live alerts over Redis.

daphne runs with its own SQLite file and the Redis channel layer (a database number of its own);
alerts are stored by a separate ``manage.py shell`` process through ``alerts.services.open_alert``
(with a real scream cut from the real recordings), so their broadcast reaches the pages exactly
as one from a scoring worker would. Tiles cannot load (the server has none; nothing is fetched
from the internet): the map must still work.
Screenshots go to $EYESCREAM_SCREENSHOTS (a temporary folder by default); the README's own
come from `make screenshots` (tools/screenshots.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

from tests.devices.live import PYTHON, REPO, LiveServer

pytestmark = pytest.mark.slow

REDIS_URL = "redis://127.0.0.1:6379/11"  # a database of its own: no other test's "alerts" group
PASSWORD = "pw-for-tests-only"
SCREAM = "audio/screamdet-main/319258_ramston_woman-screaming-of-fear.flac"
SCREENSHOTS = Path(
    os.environ.get("EYESCREAM_SCREENSHOTS", Path(tempfile.gettempdir()) / "eyescream-screenshots")
)

SETUP = f"""
import json
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from devices.models import Device, Location, Site
User = get_user_model()
for name, group in [("op1", "Operators"), ("op2", "Operators"), ("boss", "Admins")]:
    user = User.objects.create_user(name, password={PASSWORD!r})
    user.groups.add(Group.objects.get(name=group))
site = Site.objects.create(name="Hongdae station", latitude=37.5571, longitude=126.9245)
out = {{"site": site.pk, "devices": {{}}}}
for place, lat, lon, name in [("Exit 9 stairs", 37.5575, 126.9240, "stairs-mic"),
                              ("Restroom corridor", 37.5568, 126.9251, "restroom-mic")]:
    location = Location.objects.create(site=site, name=place, latitude=lat, longitude=lon)
    out["devices"][name] = Device.objects.create(location=location, name=name).pk
print("RESULT" + json.dumps(out))
"""

# Cut the first labelled scream with 2 s pre-roll and 1 s post-roll (the snippet policy), store
# the alert (broadcast after commit), then draw its spectrogram (broadcasts alert.updated).
OPEN_ALERT = """
import json, time, soundfile
from datetime import timedelta
from django.utils import timezone
from alerts.services import open_alert
from alerts.tasks import render_alert_image
audio, rate = soundfile.read({path!r}, dtype="float32")
onset, end = {onset}, {end}
start = max(0.0, onset - 2.0)
snippet = audio[int(start * rate): int(min(len(audio) / rate, end + 1.0) * rate)]
now = timezone.now()
print("STORE_AT", time.time(), flush=True)
alert = open_alert(device_id={device_id}, started_at=now - timedelta(seconds=end - onset),
    peak_score=0.97, mean_score=0.86,
    score_curve=[[onset - start + 0.1 * i, min(0.97, 0.55 + 0.05 * i)] for i in range(9)],
    model_version="browser-test", snippet=snippet, snippet_rate=rate,
    snippet_started_at=now - timedelta(seconds=end - start))
print("BROADCAST_AT", time.time(), flush=True)
render_alert_image(alert.pk)
print("RESULT" + json.dumps({{"id": alert.pk}}))
"""


def redis_available() -> bool:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        return False
    return True


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def first_scream(real_v1: Path) -> tuple[float, float]:
    for line in (real_v1 / SCREAM).with_suffix(".txt").read_text().splitlines():
        start, end, label = line.split("\t")
        if label.strip() == "1":
            return float(start), float(end)
    raise AssertionError(f"no scream label in {SCREAM}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not redis_available():
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    flush_redis()
    live = LiveServer(tmp_path_factory.mktemp("dashboard"), {"REDIS_URL": REDIS_URL})
    live.migrate()
    live.world = json.loads(live.shell(SETUP).split("RESULT", 1)[1])
    live.start()
    yield live
    live.stop()
    flush_redis()


def new_browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip(
            "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    options.page_load_strategy = "eager"  # tiles that cannot load must not hold up the test
    for flag in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--window-size=1280,900",
        "--autoplay-policy=no-user-gesture-required",
    ]:
        options.add_argument(flag)
    drv = webdriver.Chrome(service=Service(driver), options=options)
    drv.set_page_load_timeout(30)
    return drv


@pytest.fixture(scope="module")
def browsers(server):
    first = new_browser()
    second = new_browser()
    yield first, second
    first.quit()
    second.quit()


def wait_for(condition, timeout: float = 10.0, what: str = "condition", interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except (NoSuchElementException, StaleElementReferenceException):
            value = None  # the page is being replaced (a form posted, a redirect): not yet
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def js(drv, script: str):
    return drv.execute_script(script)


def login(drv, server, username: str, next_url: str = "/") -> None:
    from selenium.webdriver.common.by import By

    drv.delete_all_cookies()
    drv.get(f"{server.http_url}/accounts/login/?next={next_url}")
    drv.find_element(By.ID, "id_username").send_keys(username)
    drv.find_element(By.ID, "id_password").send_keys(PASSWORD)
    drv.find_element(By.ID, "login-submit").click()
    wait_for(lambda: "/accounts/login/" not in drv.current_url, what=f"{username} to log in")


def open_live(drv, url: str) -> None:
    drv.get(url)
    wait_for(
        lambda: (
            js(drv, "const e = document.getElementById('live-state'); return e && e.textContent")
            == "live"
        ),
        what=f"the live connection of {url}",
    )


def store_alert(server, real_v1: Path, device_id: int, wait: bool = True):
    onset, end = first_scream(real_v1)
    code = OPEN_ALERT.format(path=str(real_v1 / SCREAM), onset=onset, end=end, device_id=device_id)
    process = subprocess.Popen(
        [str(PYTHON), "manage.py", "shell", "--no-imports", "-c", code],
        cwd=REPO,
        env=server.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if not wait:
        return process
    return finish(process)


def finish(process) -> dict:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, f"{out}\n{err}"
    times = {
        key: float(out.split(marker, 1)[1].split()[0])
        for key, marker in (("store_at", "STORE_AT"), ("broadcast_at", "BROADCAST_AT"))
    }
    return {**json.loads(out.split("RESULT", 1)[1]), **times}


def shot(drv, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert drv.save_screenshot(str(SCREENSHOTS / name))


def test_live_alert_review_with_shortcut_and_a_second_operator_sees_it(server, browsers, real_v1):
    from selenium.webdriver.common.by import By

    first, second = browsers
    devices = server.world["devices"]
    login(first, server, "op1")
    open_live(first, f"{server.http_url}/")
    markers = js(first, "return [...document.querySelectorAll('.dev-marker')].length")
    assert markers == len(devices)  # every device is on the map, tiles or not
    login(second, server, "op2", "/alerts/")
    open_live(second, f"{server.http_url}/alerts/")

    process = store_alert(server, real_v1, devices["stairs-mic"], wait=False)
    item = "#alert-list li.status-new"
    wait_for(
        lambda: js(first, f"return document.querySelector('{item}') !== null"),
        15,
        "the alert in the map's list",
    )
    result = finish(process)
    alert_id = result["id"]
    arrival = js(first, f"return window.eyescreamMap.arrivals[{alert_id}]")
    assert arrival["kind"] == "created"  # pushed over the WebSocket, not fetched on reconnect
    # From the start of open_alert (snippet encoding, row, commit, broadcast) to the page.
    latency_s = arrival["at"] / 1000 - result["store_at"]
    print(
        f"alert {alert_id}: on the map {latency_s * 1000:.0f} ms after open_alert began "
        f"({(result['broadcast_at'] - result['store_at']) * 1000:.0f} ms until it returned)"
    )
    assert 0 < latency_s < 2.0
    state = js(
        first,
        f"return document.querySelector("
        f"'.dev-marker[data-device-id=\"{devices['stairs-mic']}\"]').dataset.state",
    )
    assert state == "alerting"
    other = js(
        first,
        f"return document.querySelector("
        f"'.dev-marker[data-device-id=\"{devices['restroom-mic']}\"]').dataset.state",
    )
    assert other == "offline"
    assert "Exit 9 stairs" in first.find_element(By.CSS_SELECTOR, "#toasts .toast").text
    assert js(first, "return location.pathname") == "/"  # no reload happened
    wait_for(
        lambda: js(second, f"return !!document.querySelector('tr[data-id=\"{alert_id}\"]')"),
        5,
        "the alert in the second operator's queue",
    )
    time.sleep(0.3)
    shot(first, "map-live-alert.png")

    first.find_element(By.CSS_SELECTOR, f"#alert-list li[data-id='{alert_id}'] a").click()
    wait_for(
        lambda: js(first, "return location.pathname") == f"/alerts/{alert_id}/",
        what="the review page",
    )
    duration = wait_for(
        lambda: js(
            first,
            "const a = document.getElementById('snippet');"
            "return a.readyState >= 1 && a.duration > 0 ? a.duration : 0",
        ),
        10,
        "the snippet's audio to load",
    )
    onset, end = first_scream(real_v1)
    assert duration == pytest.approx(min(onset, 2.0) + (end - onset) + 1.0, abs=0.05)
    wait_for(
        lambda: js(
            first,
            "const i = document.getElementById('spectrogram');"
            "return !i.hidden && i.complete && i.naturalWidth > 0",
        ),
        10,
        "the spectrogram picture",
    )
    open_live(first, first.current_url)
    open_live(second, f"{server.http_url}/alerts/{alert_id}/")
    first.set_window_size(1280, 1250)  # the whole review page, buttons included
    shot(first, "review.png")
    first.set_window_size(1280, 900)

    first.find_element(By.TAG_NAME, "body").send_keys("c")  # the confirm shortcut
    wait_for(
        lambda: first.find_element(By.ID, "status").text == "confirmed",
        5,
        "the confirmation on the first page",
    )
    wait_for(
        lambda: second.find_element(By.ID, "status").text == "confirmed",
        2,
        "the second operator's page to show the decision live",
    )
    assert "by op1" in second.find_element(By.ID, "decided").text
    assert js(second, "return document.getElementById('buttons').disabled") is True
    detail = json.loads(
        server.shell(f"""
import json
from alerts.models import Review
r = Review.objects.select_related("user").get(alert_id={alert_id})
print(json.dumps([r.user.username, r.label, r.alert.status]))
""")
        .strip()
        .splitlines()[-1]
    )
    assert detail == ["op1", "1", "confirmed"]


def test_reconnect_fetches_the_alerts_missed_while_disconnected(server, browsers, real_v1):
    first, _ = browsers
    login(first, server, "op1")
    open_live(first, f"{server.http_url}/")
    server.stop()
    wait_for(
        lambda: (
            js(first, "return document.getElementById('live-state').textContent") == "reconnecting"
        ),
        5,
        "the page to notice the dropped connection",
    )
    missed = store_alert(server, real_v1, server.world["devices"]["restroom-mic"])["id"]
    server.start()
    wait_for(
        lambda: js(
            first, f"return !!document.querySelector('#alert-list li[data-id=\"{missed}\"]')"
        ),
        15,
        "the missed alert after the reconnect",
    )
    arrival = js(first, f"return window.eyescreamMap.arrivals[{missed}]")
    assert arrival["kind"] == "missed"
    assert js(first, "return location.pathname") == "/"


def test_two_operators_decide_at_once_the_second_is_told_and_the_next_alert_opens(
    server, browsers, real_v1
):
    from selenium.webdriver.common.by import By

    first, second = browsers
    device = server.world["devices"]["stairs-mic"]
    older = store_alert(server, real_v1, device)["id"]
    newer = store_alert(server, real_v1, device)["id"]
    login(first, server, "op1")
    login(second, server, "op2")
    for drv in (first, second):
        open_live(drv, f"{server.http_url}/alerts/{newer}/")
    # The second page misses the live update, as if both pressed at the same moment.
    js(second, "const l = window.eyescreamReview.live; l.stopped = true; l.socket.close();")
    first.find_element(By.ID, "note").send_keys("two voices, one screaming")
    first.find_element(By.ID, "confirm").click()
    wait_for(
        lambda: js(first, "return location.pathname") == f"/alerts/{older}/",
        5,
        "the next alert to open after the decision",
    )
    second.find_element(By.TAG_NAME, "body").send_keys("2")  # dismiss: siren/bird/machine
    conflict = second.find_element(By.ID, "conflict")
    wait_for(conflict.is_displayed, 5, "the second operator to be told")
    assert f"alert {newer} was already confirmed by op1" in conflict.text
    assert second.find_element(By.ID, "status").text == "confirmed"
    assert "two voices, one screaming" in second.find_element(By.ID, "decided").text
    reviews = json.loads(
        server.shell(f"""
import json
from alerts.models import Review
print(json.dumps(list(Review.objects.filter(alert_id={newer}).values_list("user__username",
    "label"))))
""")
        .strip()
        .splitlines()[-1]
    )
    assert reviews == [["op1", "1"]]


def test_admin_places_a_location_by_clicking_on_the_map(server, browsers):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    _, second = browsers
    login(second, server, "boss")
    second.get(f"{server.http_url}/manage/locations/new/?site={server.world['site']}")
    place_map = wait_for(lambda: second.find_element(By.ID, "place-map"), what="the map")
    wait_for(lambda: js(second, "return !!window.eyescreamPlace"), what="the map script")
    ActionChains(second).move_to_element_with_offset(place_map, 60, -40).click().perform()
    expected = js(
        second,
        """
        const m = window.eyescreamPlace.map, box = m.getContainer().getBoundingClientRect();
        const p = m.containerPointToLatLng([box.width / 2 + 60, box.height / 2 - 40]);
        return [p.lat, p.lng];""",
    )
    lat = float(second.find_element(By.ID, "id_latitude").get_attribute("value"))
    lng = float(second.find_element(By.ID, "id_longitude").get_attribute("value"))
    assert lat == pytest.approx(expected[0], abs=2e-5)
    assert lng == pytest.approx(expected[1], abs=2e-5)
    second.find_element(By.ID, "id_name").send_keys("Ticket hall")
    second.find_element(By.ID, "save").click()
    wait_for(lambda: second.current_url.endswith("/manage/"), what="the saved location")
    stored = json.loads(
        server.shell("""
import json
from devices.models import Location
loc = Location.objects.get(name="Ticket hall")
print(json.dumps([loc.latitude, loc.longitude]))
""")
        .strip()
        .splitlines()[-1]
    )
    assert stored == pytest.approx([lat, lng], abs=1e-6)


def floor_plan_png(path: Path) -> Path:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (400, 300), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([10, 10, 390, 290], outline="black", width=4)
    draw.line([200, 10, 200, 290], fill="black", width=3)
    image.save(path)
    return path


def test_admin_uploads_a_floor_plan_and_places_a_location_on_it(server, browsers, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    _, second = browsers
    login(second, server, "boss")
    site = server.world["site"]
    second.get(f"{server.http_url}/manage/sites/{site}/")
    upload = wait_for(lambda: second.find_element(By.ID, "id_floor_plan"), what="the form")
    upload.send_keys(str(floor_plan_png(tmp_path / "plan.png")))
    # The bounds picker's corners, put exactly where the plan lies (dragging them is
    # tests/dashboard/test_browser_console_tools.py).
    js(second, "window.eyescreamPlace.setBounds([[37.5565, 126.9235], [37.5580, 126.9255]])")
    assert "north 37.558" in second.find_element(By.ID, "bounds-text").text
    second.find_element(By.CSS_SELECTOR, "#site-form button[type=submit]").click()
    wait_for(lambda: second.current_url.endswith("/manage/"), what="the saved site")

    second.get(f"{server.http_url}/manage/locations/new/?site={site}")
    plan = wait_for(lambda: second.find_element(By.ID, "plan"), what="the floor plan")
    wait_for(
        lambda: js(
            second,
            "const p = document.getElementById('plan');"
            "return !document.getElementById('plan-box').hidden && p.complete"
            " && p.naturalWidth === 400",
        ),
        10,
        "the floor plan image",
    )
    second.execute_script("arguments[0].scrollIntoView({block: 'center'})", plan)
    size = plan.size
    ActionChains(second).move_to_element_with_offset(plan, size["width"] / 4, 0).click().perform()
    x = float(second.find_element(By.ID, "id_x").get_attribute("value"))
    y = float(second.find_element(By.ID, "id_y").get_attribute("value"))
    assert x == pytest.approx(0.75, abs=0.01) and y == pytest.approx(0.5, abs=0.01)
    assert second.find_element(By.ID, "plan-dot").is_displayed()
    second.find_element(By.ID, "id_name").send_keys("Platform toilet")
    second.find_element(By.ID, "save").click()
    wait_for(lambda: second.current_url.endswith("/manage/"), what="the saved location")
    stored = json.loads(
        server.shell("""
import json
from devices.models import Location
loc = Location.objects.get(name="Platform toilet")
print(json.dumps([loc.x, loc.y, loc.latitude, loc.site.floor_plan_bounds]))
""")
        .strip()
        .splitlines()[-1]
    )
    assert stored[:3] == [pytest.approx(x), pytest.approx(y), None]
    assert stored[3] == [[37.5565, 126.9235], [37.558, 126.9255]]


def test_operator_cannot_reach_the_device_pages(server, browsers):
    from selenium.webdriver.common.by import By

    first, _ = browsers
    login(first, server, "op1")
    for path in ("/manage/", "/manage/devices/new/", "/manage/locations/new/"):
        first.get(f"{server.http_url}{path}")
        assert "403 Forbidden" in first.find_element(By.TAG_NAME, "h1").text, path


def test_api_docs_page_lists_the_endpoints_from_the_schema(server, browsers):
    first, _ = browsers
    login(first, server, "op1")
    first.get(f"{server.http_url}/api/docs/")
    titles = wait_for(
        lambda: js(
            first, "return [...document.querySelectorAll('.endpoint h3')].map(h => h.textContent)"
        ),
        10,
        "the endpoints listed from the OpenAPI schema",
    )
    assert "POST /api/alerts/{id}/review/" in titles
    assert "GET /api/devices/" in titles
