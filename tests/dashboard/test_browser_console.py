"""The operator console in real headless Chromium against a real daphne on Redis: live state
that does not go stale across a lost connection, and attention that latches.

Changes are made by separate ``manage.py shell`` processes (as a Celery worker, another daphne
or a second operator would), some while the page's connection is down (daphne stopped).
"""

from __future__ import annotations

import json
import re
import shutil
import time

import pytest
import requests

from tests.dashboard.test_browser_live import (
    SETUP,
    js,
    login,
    open_live,
    shot,
    store_alert,
    wait_for,
)
from tests.devices.live import LiveServer

pytestmark = pytest.mark.slow

REDIS_URL = "redis://127.0.0.1:6379/6"  # a database of its own: no other test's "alerts" group


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
    live = LiveServer(
        tmp_path_factory.mktemp("console"),
        {"REDIS_URL": REDIS_URL, "EYESCREAM_ALARM_REPEAT_S": "2"},
    )
    live.migrate()
    live.world = json.loads(live.shell(SETUP).split("RESULT", 1)[1])
    live.start()
    yield live
    live.stop()
    flush_redis()


def chromium(autoplay: bool, size: str = "1280,900"):
    chrome, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chrome and driver):
        pytest.fail(
            "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chrome
    options.page_load_strategy = "eager"  # tiles that cannot load must not hold up the test
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    flags.append(f"--window-size={size}")
    if autoplay:
        flags.append("--autoplay-policy=no-user-gesture-required")
    for flag in flags:
        options.add_argument(flag)
    drv = webdriver.Chrome(service=Service(driver), options=options)
    drv.set_page_load_timeout(30)
    return drv


@pytest.fixture(scope="module")
def browser(server):
    drv = chromium(autoplay=True)
    yield drv
    drv.quit()


def marker_state(drv, device_id: int) -> str | None:
    return js(
        drv,
        f"const m = document.querySelector('.dev-marker[data-device-id=\"{device_id}\"]');"
        "return m ? m.dataset.state : null",
    )


def item(drv, alert_id: int) -> dict | None:
    return js(
        drv,
        f"const li = document.querySelector('#alert-list li[data-id=\"{alert_id}\"]');"
        "return li ? {status: li.querySelector('.status').textContent, open: li.dataset.open}"
        " : null",
    )


def shell(server, code: str) -> None:
    server.shell("from django.utils import timezone\nfrom devices.models import Device\n" + code)


def test_changes_made_while_the_connection_was_down_show_after_it_reconnects(
    server, browser, real_v1
):
    stairs, restroom = (server.world["devices"][n] for n in ("stairs-mic", "restroom-mic"))
    login(browser, server, "op1")
    open_live(browser, f"{server.http_url}/")
    js(browser, "window.notReloaded = true")

    # A device coming online reaches the map at once (no polling): within 2 s of the change.
    shell(
        server,
        "from devices.signals import connection_changed\n"
        f"Device.objects.filter(pk={stairs}).update(connection_state=Device.ONLINE)\n"
        f"connection_changed({stairs}, Device.ONLINE)",
    )
    t0 = time.monotonic()
    wait_for(lambda: marker_state(browser, stairs) == "online", 2, "the device online")
    print(f"device online on the map {time.monotonic() - t0:.2f} s after the change's commit")
    first = store_alert(server, real_v1, stairs)["id"]
    second = store_alert(server, real_v1, restroom)["id"]
    wait_for(lambda: item(browser, second), 15, "both alerts on the map")
    assert marker_state(browser, stairs) == "alerting"
    assert item(browser, second)["open"] == "1"
    assert js(browser, "return window.eyescreamMap.live.unreviewedCount()") == 2
    snapshots = js(browser, "return window.eyescreamMap.live.snapshots")

    server.stop()
    wait_for(
        lambda: (
            js(browser, "return document.getElementById('live-state').textContent")
            == "reconnecting"
        ),
        5,
        "the page to notice the lost connection",
    )
    # Meanwhile: op2 confirms the first alert, the second incident ends, the first device's
    # stream dies (marked offline as the sweep would), the second device is disabled.
    shell(
        server,
        "from django.contrib.auth import get_user_model\n"
        "from alerts.models import Alert\n"
        "from alerts.reviews import review_alert\n"
        f"review_alert({first}, get_user_model().objects.get(username='op2'), '1')\n"
        f"Alert.objects.filter(pk={second}).update(ended_at=timezone.now())\n"
        f"Device.objects.filter(pk={stairs}).update(connection_state=Device.OFFLINE)\n"
        f"Device.objects.filter(pk={restroom}).update(enabled=False)",
    )
    server.start()
    wait_for(
        lambda: js(browser, "return window.eyescreamMap.live.snapshots") > snapshots,
        20,
        "the snapshot after the reconnect",
    )
    assert js(browser, "return window.notReloaded") is True  # the same page, no reload
    assert item(browser, first)["status"] == "confirmed"
    assert item(browser, second) == {"status": "new", "open": "0"}
    assert marker_state(browser, stairs) == "offline"
    assert marker_state(browser, restroom) == "disabled"
    assert js(browser, "return window.eyescreamMap.live.unreviewedCount()") == 1
    assert js(browser, "return document.title") == "(1) Live map · Eye-SCREAM"


def test_a_lost_broadcast_makes_the_page_ask_for_a_new_snapshot(server, browser, real_v1):
    login(browser, server, "op1")
    open_live(browser, f"{server.http_url}/")
    wait_for(lambda: js(browser, "return window.eyescreamMap.live.snapshots") >= 1, 10, "sync")
    resyncs = js(browser, "return window.eyescreamMap.live.resyncs")
    # A broadcast lost on its way: its number taken, the message never sent; then an alert.
    server.shell(
        "from asgiref.sync import async_to_sync\n"
        "from channels.layers import get_channel_layer\n"
        "from alerts.sequence import take\n"
        "async_to_sync(take)(get_channel_layer(), 'alerts', 1)"
    )
    alert = store_alert(server, real_v1, server.world["devices"]["restroom-mic"])["id"]
    wait_for(lambda: item(browser, alert), 15, "the alert after the gap")
    wait_for(
        lambda: js(browser, "return window.eyescreamMap.live.resyncs") == resyncs + 1,
        5,
        "the page to ask for a snapshot",
    )
    live = js(
        browser,
        "const l = window.eyescreamMap.live; return {seq: l.seq, pending: l.pending.size}",
    )
    assert live["pending"] == 0


def test_unreviewed_alerts_latch_a_banner_the_title_and_the_alarm_until_reviewed(
    server, browser, real_v1
):
    from selenium.webdriver.common.by import By

    stairs = server.world["devices"]["stairs-mic"]
    # Start from a clean queue: everything so far is reviewed.
    server.shell(
        "from alerts.models import Alert\nAlert.objects.filter(status='new').update("
        "status='dismissed')"
    )
    login(browser, server, "op1", "/alerts/")
    open_live(browser, f"{server.http_url}/alerts/")
    banner = browser.find_element(By.ID, "attention")
    assert not banner.is_displayed()
    assert js(browser, "return document.title") == "Review · Eye-SCREAM"
    sound = browser.find_element(By.ID, "sound-state")
    assert sound.get_attribute("data-state") == "on"  # on by default (autoplay allowed here)
    played = js(browser, "return window.eyescreamReview.live.alarm.played")

    alert = store_alert(server, real_v1, stairs)["id"]
    wait_for(banner.is_displayed, 15, "the banner")
    assert banner.text == "1 alert waits for review"
    assert js(browser, "return document.title") == "(1) Review · Eye-SCREAM"
    # The toast goes after 8 s; the banner, the title and the alarm (every 2 s here) stay.
    time.sleep(10)
    assert js(browser, "return document.querySelectorAll('#toasts .toast').length") == 0
    assert banner.is_displayed() and banner.text == "1 alert waits for review"
    assert js(browser, "return document.title") == "(1) Review · Eye-SCREAM"
    assert js(browser, "return window.eyescreamReview.live.alarm.played") >= played + 4
    shot(browser, "attention-banner.png")

    # Muted: no more sound, and the state says so (kept for this browser).
    sound.click()
    assert sound.get_attribute("data-state") == "muted"
    muted_at = js(browser, "return window.eyescreamReview.live.alarm.played")
    time.sleep(3)
    assert js(browser, "return window.eyescreamReview.live.alarm.played") == muted_at
    sound.click()
    assert sound.get_attribute("data-state") == "on"

    # Another operator decides: the banner and the count go everywhere.
    server.shell(
        "from django.contrib.auth import get_user_model\n"
        "from alerts.reviews import review_alert\n"
        f"review_alert({alert}, get_user_model().objects.get(username='op2'), '0_1')"
    )
    wait_for(lambda: not banner.is_displayed(), 20, "the banner to go")
    assert js(browser, "return document.title") == "Review · Eye-SCREAM"


def test_a_browser_that_blocks_autoplay_shows_a_prompt_that_enables_the_sound(server):
    from selenium.webdriver.common.by import By

    drv = chromium(autoplay=False)
    try:
        login(drv, server, "op1")
        open_live(drv, f"{server.http_url}/")
        sound = drv.find_element(By.ID, "sound-state")
        assert sound.get_attribute("data-state") == "blocked"
        assert "click to enable" in sound.text
        sound.click()
        wait_for(lambda: sound.get_attribute("data-state") == "on", 5, "the sound to start")
        assert js(drv, "return window.eyescreamMap.live.alarm.ctx.state") == "running"
    finally:
        drv.quit()


def test_reloading_the_token_page_registers_nothing_and_shows_the_token_no_more(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    login(browser, server, "boss", "/manage/devices/new/")
    browser.get(f"{server.http_url}/manage/devices/new/")
    wait_for(lambda: browser.find_elements(By.ID, "id_name"), what="the form")
    Select(browser.find_element(By.ID, "id_location")).select_by_index(1)
    browser.find_element(By.ID, "id_name").send_keys("hall-mic")
    browser.find_element(By.CSS_SELECTOR, "#device-form button[type=submit]").click()
    token = wait_for(lambda: browser.find_elements(By.ID, "token"), what="the token")[0].text
    assert token.startswith("esd_")
    assert browser.current_url.endswith("/token/")  # a GET page after the POST's redirect
    browser.refresh()
    gone = wait_for(lambda: browser.find_elements(By.ID, "token-gone"), what="the reloaded page")
    assert "shown once" in gone[0].text
    assert token not in browser.page_source
    stored = server.shell(
        "from devices.models import Device\n"
        "print('COUNT', Device.objects.filter(name='hall-mic').count())"
    )
    assert "COUNT 1" in stored


def test_a_verdict_is_undone_from_the_next_page_and_changed_keeping_the_history(
    server, browser, real_v1
):
    from selenium.webdriver.common.by import By

    stairs = server.world["devices"]["stairs-mic"]
    older = store_alert(server, real_v1, stairs)["id"]
    newer = store_alert(server, real_v1, stairs)["id"]
    login(browser, server, "op1")
    open_live(browser, f"{server.http_url}/alerts/{newer}/")
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("c")  # confirm: the page moves on to the next alert
    wait_for(
        lambda: js(browser, "return location.pathname") == f"/alerts/{older}/", 5, "the next alert"
    )
    undo = wait_for(lambda: browser.find_elements(By.ID, "undo"), 5, "the undo offer")[0]
    assert f"Alert {newer}: confirmed" in undo.text
    browser.find_element(By.TAG_NAME, "body").send_keys("u")
    wait_for(
        lambda: js(browser, "return location.pathname") == f"/alerts/{newer}/", 5, "back to it"
    )
    wait_for(lambda: browser.find_element(By.ID, "status").text == "new", 5, "new again")
    assert not browser.find_element(By.ID, "buttons").get_attribute("disabled")
    rows = browser.find_elements(By.CSS_SELECTOR, "#history tbody tr[data-review-id]")
    assert [r.find_elements(By.TAG_NAME, "td")[2].text for r in rows] == [
        "verdict withdrawn",
        "scream",
    ]

    # Decided again, then changed on its page: no auto-advance, one more row.
    browser.find_element(By.TAG_NAME, "body").send_keys("2")
    wait_for(
        lambda: js(browser, "return location.pathname") == f"/alerts/{older}/", 5, "the next alert"
    )
    open_live(browser, f"{server.http_url}/alerts/{newer}/")
    assert browser.find_element(By.ID, "status").text == "dismissed"
    browser.find_element(By.ID, "change-verdict").click()
    browser.find_element(By.ID, "note").send_keys("it was a scream after all")
    browser.find_element(By.ID, "confirm").click()
    wait_for(lambda: browser.find_element(By.ID, "status").text == "confirmed", 5, "the change")
    time.sleep(1)
    assert js(browser, "return location.pathname") == f"/alerts/{newer}/"
    rows = browser.find_elements(By.CSS_SELECTOR, "#history tbody tr[data-review-id]")
    assert len(rows) == 4
    history = json.loads(
        server.shell(f"""
import json
from alerts.models import Review
rows = Review.objects.filter(alert_id={newer}).order_by("created", "id")
print(json.dumps([[r.user.username, r.label, r.note] for r in rows]))
""")
        .strip()
        .splitlines()[-1]
    )
    assert history == [
        ["op1", "1", ""],
        ["op1", "", ""],
        ["op1", "0_1", ""],
        ["op1", "1", "it was a scream after all"],
    ]
    # The queue shows the verdict in force with who, why and when.
    browser.get(f"{server.http_url}/alerts/?status=all")
    row = wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, f"tr[data-id='{newer}']"), 5, "the row"
    )[0]
    assert row.find_element(By.CLASS_NAME, "reviewer").text == "op1"
    assert "scream after all" in row.find_element(By.CLASS_NAME, "reason").text
    assert row.find_element(By.CLASS_NAME, "reviewed").text


def test_the_snippet_seeks_where_the_picture_is_clicked_and_a_playhead_follows(
    server, browser, real_v1
):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    alert = store_alert(server, real_v1, server.world["devices"]["restroom-mic"])["id"]
    login(browser, server, "op1")
    open_live(browser, f"{server.http_url}/alerts/{alert}/")
    duration = wait_for(
        lambda: js(
            browser,
            "const a = document.getElementById('snippet');"
            "return a.readyState >= 1 && a.duration > 0 ? a.duration : 0",
        ),
        10,
        "the snippet",
    )
    wait_for(
        lambda: js(
            browser,
            "const i = document.getElementById('spectrogram');"
            "return !i.hidden && i.complete && i.naturalWidth > 0",
        ),
        10,
        "the picture",
    )
    # Seekable over its whole length: the server answers the player's byte ranges (206).
    seekable = js(
        browser,
        "const s = document.getElementById('snippet').seekable;"
        "return s.length ? [s.start(0), s.end(0)] : []",
    )
    assert seekable and seekable[0] == 0 and seekable[1] == pytest.approx(duration, abs=0.05)
    picture = browser.find_element(By.ID, "spectrogram")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", picture)
    axis = js(
        browser,
        "return JSON.parse(document.getElementById('page-data').textContent).picture_time_axis",
    )
    width = picture.size["width"]
    x = (axis[0] + (axis[1] - axis[0]) * 0.75) * width  # three quarters into the snippet
    ActionChains(browser).move_to_element_with_offset(picture, x - width / 2, 0).click().perform()
    wait_for(
        lambda: js(
            browser,
            "const a = document.getElementById('snippet');"
            "return !a.seeking && Math.abs(a.currentTime - a.duration * 0.75) < 0.1",
        ),
        5,
        "the player to seek to where the picture was clicked",
    )
    playhead = js(
        browser,
        "const p = document.getElementById('playhead');"
        "return p.hidden ? null : parseFloat(p.style.left)",
    )
    assert playhead == pytest.approx(x, abs=3)
    shot(browser, "review-playhead.png")


def no_sideways_scroll(drv) -> bool:
    return js(drv, "return document.scrollingElement.scrollWidth <= window.innerWidth")


def test_on_a_phone_the_map_keeps_the_width_and_no_page_scrolls_sideways(server, real_v1):
    from selenium.webdriver.common.by import By

    alert = store_alert(server, real_v1, server.world["devices"]["stairs-mic"])["id"]
    drv = chromium(autoplay=True, size="390,844")
    try:
        drv.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True},
        )
        login(drv, server, "boss")
        open_live(drv, f"{server.http_url}/")
        assert js(drv, "return window.innerWidth") == 390
        box = js(
            drv,
            "const r = document.getElementById('map').getBoundingClientRect();"
            "return [r.width, r.height]",
        )
        assert box[0] >= 300 and box[1] >= 300, box
        markers = js(drv, "return document.querySelectorAll('.dev-marker').length")
        placed = js(
            drv,
            "return JSON.parse(document.getElementById('page-data').textContent).devices"
            ".filter(d => d.latitude !== null).length",
        )
        assert markers == placed >= len(server.world["devices"])
        assert no_sideways_scroll(drv)
        shot(drv, "phone-map.png")
        for path in (
            "/alerts/?status=all",
            f"/alerts/{alert}/",
            "/manage/",
            "/manage/devices/new/",
            f"/manage/locations/new/?site={server.world['site']}",
        ):
            drv.get(f"{server.http_url}{path}")
            wait_for(lambda: js(drv, "return document.readyState") != "loading", what=path)
            wait_for(lambda: drv.find_elements(By.TAG_NAME, "h1"), what=path)
            assert no_sideways_scroll(drv), (
                path,
                js(drv, "return document.scrollingElement.scrollWidth"),
            )
        drv.get(f"{server.http_url}/alerts/{alert}/")
        wait_for(lambda: drv.find_elements(By.ID, "confirm"), what="the review page")
        shot(drv, "phone-review.png")
    finally:
        drv.quit()


def test_the_navigation_shows_only_pages_the_user_may_open(server, browser):
    from selenium.webdriver.common.by import By

    def links():
        return [a.text for a in browser.find_elements(By.CSS_SELECTOR, ".topbar nav a")]

    login(browser, server, "op1")
    browser.get(f"{server.http_url}/alerts/")
    assert links() == ["Map", "Review", "API"]  # no Devices: it answers 403 to operators
    session = {"sessionid": browser.get_cookie("sessionid")["value"]}
    hrefs = [
        a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, ".topbar nav a")
    ]
    statuses = [
        requests.get(href, cookies=session, allow_redirects=False, timeout=10).status_code
        for href in hrefs
    ]
    assert statuses == [200, 200, 200]  # every link opens for this user
    # A page that is not there: the site's own page, no debug page.
    browser.get(f"{server.http_url}/no/such/page/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "404 Not found"
    assert "Traceback" not in browser.page_source and "URLconf" not in browser.page_source
    login(browser, server, "boss")
    browser.get(f"{server.http_url}/alerts/")
    assert links() == ["Map", "Review", "Devices", "Models", "API"]
    # The favicon the pages name is served (no 404 in the tab).
    cookies = {"sessionid": browser.get_cookie("sessionid")["value"]}
    html = requests.get(f"{server.http_url}/alerts/", cookies=cookies, timeout=10).text
    href = re.search(r'<link rel="icon" id="favicon" type="image/svg\+xml" href="([^"]+)"', html)
    icon = requests.get(server.http_url + href.group(1), timeout=10)
    assert icon.headers["Content-Type"].startswith("image/svg")
    size = len(icon.content) if icon.status_code == 200 else -icon.status_code
    assert size > 100


def test_a_dark_system_theme_gives_dark_pages(server, browser):
    login(browser, server, "op1")
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
    )
    try:
        open_live(browser, f"{server.http_url}/")
        colours = js(
            browser,
            "const c = (s) => getComputedStyle(document.querySelector(s)).backgroundColor;"
            "return [c('body'), c('.side')]",
        )
        for colour in colours:
            red, green, blue = (int(v) for v in colour[colour.index("(") + 1 : -1].split(",")[:3])
            assert red + green + blue < 3 * 64, colours  # dark, not the light theme's
        shot(browser, "map-dark.png")
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_the_map_page_fits_the_window_with_the_banner_and_its_legend(server, browser, real_v1):
    store_alert(server, real_v1, server.world["devices"]["stairs-mic"])  # the banner shows
    login(browser, server, "op1")
    open_live(browser, f"{server.http_url}/")
    wait_for(lambda: js(browser, "return !document.getElementById('attention').hidden"), 10)
    assert js(browser, "return document.scrollingElement.scrollHeight <= window.innerHeight")
    legend = js(
        browser,
        "const r = document.getElementById('legend').getBoundingClientRect();"
        "return [r.bottom, window.innerHeight, document.getElementById('legend').textContent]",
    )
    assert legend[0] <= legend[1]
    assert legend[2].split() == ["online", "offline", "alerting", "disabled"]
