"""The browser device page in headless Chromium, with a fake microphone fed from a real file."""

from __future__ import annotations

import math
import shutil
import time

import numpy as np
import pytest
import soundfile

from detection.features import resample, to_mono

CLIP = "audio/esc50/2-104476-A-37.flac"  # 5 s clock alarm: a steady, known level
RATE = 16000  # the page's AudioContext rate


def power_db(values) -> float:
    return 10 * math.log10(np.mean([10 ** (v / 10) for v in values]))


@pytest.fixture
def browser(tmp_path, real_v1):
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip(
            "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    audio, rate = soundfile.read(str(real_v1 / CLIP), dtype="float32")
    wav = tmp_path / "fake-mic.wav"
    soundfile.write(str(wav), audio, rate, subtype="PCM_16")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
    ]:
        options.add_argument(flag)
    drv = webdriver.Chrome(service=Service(driver), options=options)
    drv.set_page_load_timeout(30)
    pcm16 = np.round(to_mono(audio) * 32767) / 32767
    expected_db = 10 * math.log10(np.mean(np.square(resample(pcm16, rate, RATE), dtype=np.float64)))
    yield drv, expected_db
    drv.quit()


@pytest.mark.slow
def test_browser_page_streams_the_microphone_at_the_files_level(live, browser):
    from selenium.webdriver.common.by import By

    drv, expected_db = browser
    device = live.make_devices({"browser-mic": {}})["browser-mic"]
    drv.get(f"{live.http_url}/device/")
    drv.find_element(By.ID, "token").send_keys(device["token"])
    drv.find_element(By.ID, "start").click()
    deadline = time.monotonic() + 20
    while drv.find_element(By.ID, "state").text != "streaming":
        assert time.monotonic() < deadline, drv.find_element(By.ID, "detail").text
        time.sleep(0.2)
    levels = live.sample_levels(device["id"], count=10)  # 10 s: two loops of the 5 s file
    page_level = float(drv.find_element(By.ID, "level-db").text)
    stored = float(drv.find_element(By.ID, "stored").text)
    drv.find_element(By.ID, "stop").click()
    row = live.device_row(device["id"])
    assert row["client_name"].startswith("browser")
    assert row["samples_received"] >= 8 * RATE and row["frames_rejected"] == 0
    assert stored > 5.0
    assert len(levels) >= 8
    assert power_db(levels) == pytest.approx(expected_db, abs=3.0)
    assert -60.0 < page_level < 0.0  # the live meter shows the newest 200 ms frame


def wait_state(drv, state: str, timeout: float) -> None:
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while drv.find_element(By.ID, "state").text != state:
        assert time.monotonic() < deadline, (
            drv.find_element(By.ID, "state").text,
            drv.find_element(By.ID, "detail").text,
        )
        time.sleep(0.2)


@pytest.mark.slow
def test_a_disabled_device_says_so_and_streams_once_enabled_again(live, browser):
    from selenium.webdriver.common.by import By

    drv, _ = browser
    device = live.make_devices({"browser-disabled": {}})["browser-disabled"]
    switch = (
        "from devices.models import Device\nd = Device.objects.get(pk={})\nd.enabled = {}\nd.save()"
    )
    drv.get(f"{live.http_url}/device/")
    drv.find_element(By.ID, "token").send_keys(device["token"])
    drv.find_element(By.ID, "start").click()
    wait_state(drv, "streaming", 20)
    live.shell(switch.format(device["id"], False))  # the server closes the stream with 4013
    wait_state(drv, "disabled", 10)
    notice = drv.find_element(By.ID, "notice")
    assert notice.is_displayed() and "An admin has disabled this device" in notice.text
    assert "starts streaming by itself" in notice.text
    assert drv.find_element(By.ID, "stop").is_enabled()  # still on: it has not given up
    live.shell(switch.format(device["id"], True))
    wait_state(drv, "streaming", 30)  # the next try (5 s, then 10 s) finds it enabled
    assert not drv.find_element(By.ID, "notice").is_displayed()
    drv.find_element(By.ID, "stop").click()
    assert live.device_row(device["id"])["samples_received"] > 0


@pytest.mark.slow
def test_the_page_remembers_the_token_until_forgotten(live, browser):
    from selenium.webdriver.common.by import By

    drv, _ = browser
    device = live.make_devices({"browser-remembered": {}})["browser-remembered"]
    drv.get(f"{live.http_url}/device/")
    assert not drv.find_element(By.ID, "remembered").is_displayed()
    drv.find_element(By.ID, "token").send_keys(device["token"])
    drv.find_element(By.ID, "start").click()
    wait_state(drv, "streaming", 20)  # remembered once the server accepted it
    drv.find_element(By.ID, "stop").click()
    drv.refresh()
    assert drv.find_element(By.ID, "token").get_attribute("value") == device["token"]
    assert drv.find_element(By.ID, "remembered").is_displayed()
    drv.find_element(By.ID, "start").click()  # no pasting after a reload
    wait_state(drv, "streaming", 20)
    drv.find_element(By.ID, "stop").click()
    drv.find_element(By.ID, "forget").click()
    assert drv.find_element(By.ID, "token").get_attribute("value") == ""
    assert drv.execute_script("return localStorage.getItem('eyescream-device-token')") is None
    drv.refresh()
    assert drv.find_element(By.ID, "token").get_attribute("value") == ""
    assert not drv.find_element(By.ID, "remembered").is_displayed()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fake_device", "expected"),
    [
        (True, "The microphone was not allowed for this page."),  # a microphone, refused
        (False, "No microphone was found."),  # none at all
    ],
)
def test_a_refused_or_missing_microphone_is_explained_in_words(live, fake_device, expected):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.fail("chromium and chromedriver are not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    if fake_device:
        flags.append("--use-fake-device-for-media-stream")
    for flag in flags:
        options.add_argument(flag)
    drv = webdriver.Chrome(service=Service(driver), options=options)
    try:
        drv.get(f"{live.http_url}/device/")
        # The user (or a policy) said no to the microphone for this site.
        drv.execute_cdp_cmd(
            "Browser.setPermission",
            {"permission": {"name": "microphone"}, "setting": "denied", "origin": live.http_url},
        )
        drv.find_element(By.ID, "token").send_keys("esd_" + "x" * 43)
        drv.find_element(By.ID, "start").click()
        wait_state(drv, "error", 10)
        notice = drv.find_element(By.ID, "notice")
        assert notice.is_displayed()
        assert notice.text.startswith(expected), notice.text
        assert "press Start again" in notice.text and "Error" not in notice.text
        assert drv.find_element(By.ID, "start").is_enabled()
    finally:
        drv.quit()
