"""``make screenshots`` (``tools/screenshots.py``): the README's screenshots come from the running
app with the demo data in headless Chromium: every one written, phones at 390 px wide, the dark
theme dark."""

from __future__ import annotations

import pytest
from PIL import Image, ImageStat

from tools import screenshots

pytestmark = pytest.mark.slow


def brightness(path) -> float:
    return sum(ImageStat.Stat(Image.open(path).convert("L")).mean)


def test_the_script_writes_every_screenshot_from_the_running_app(tmp_path, real_v1, monkeypatch):
    monkeypatch.setenv("EYESCREAM_DATASETS", str(real_v1.parent))
    written = {path.name: path for path in screenshots.take(tmp_path)}
    assert set(written) == {
        "map-live-alert.png",
        "queue.png",
        "review.png",
        "review-dark.png",
        "map-dark.png",
        "phone-map.png",
        "phone-queue.png",
        "phone-review.png",
        "manage.png",
    }
    for name in ("phone-map.png", "phone-queue.png", "phone-review.png"):
        assert Image.open(written[name]).size == (390 * 2, 844 * 2), name  # 390x844 at 2x
    assert Image.open(written["map-live-alert.png"]).size[0] == 1280  # desktop width
    assert brightness(written["map-dark.png"]) < brightness(written["map-live-alert.png"]) / 2
    assert brightness(written["review-dark.png"]) < brightness(written["review.png"]) / 2
