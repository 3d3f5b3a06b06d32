"""The models page in real headless Chromium against a real daphne: an admin promotes version
2 and rolls it back with the page's buttons; an operator is refused the page."""

from __future__ import annotations

import pytest

from tests.dashboard.conftest import PASSWORD
from tests.dashboard.test_browser_live import login, new_browser, wait_for
from tests.devices.live import LiveServer
from tests.live.test_end_to_end import model_dir

from .conftest import artifact_copy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models-page")
    live = LiveServer(
        folder / "data",
        {"EYESCREAM_MODEL_DIR": str(model_dir()), "EYESCREAM_MODEL_STORE": str(folder / "store")},
    )
    live.migrate()
    live.manage("register_model", str(artifact_copy(folder / "candidate", threshold=0.7)))
    live.make_user("boss", PASSWORD, "Admins")
    live.make_user("op1", PASSWORD, "Operators")
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def browser(server):
    drv = new_browser()
    yield drv
    drv.quit()


def test_admin_promotes_and_rolls_back_on_the_models_page(server, browser):
    from selenium.webdriver.common.by import By

    login(browser, server, "boss", "/models/")
    active = browser.find_element(By.ID, "global-active")
    assert active.text == "version 1"
    assert (
        browser.find_element(By.CSS_SELECTOR, "#figures img")
        .get_attribute("src")
        .startswith("data:image/png;base64,")
    )
    row = browser.find_element(By.CSS_SELECTOR, '#version-table tr[data-number="2"]')
    row.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(lambda: "Version 2 is active globally." in browser.page_source, what="the promotion")
    assert browser.find_element(By.ID, "global-active").text == "version 2"
    row = browser.find_element(By.CSS_SELECTOR, '#version-table tr[data-number="2"]')
    assert row.find_element(By.CSS_SELECTOR, "td.active").text == "global"

    browser.find_element(By.XPATH, "//button[text()='Roll back']").click()
    wait_for(lambda: "Rolled back: version 1" in browser.page_source, what="the rollback")
    assert browser.find_element(By.ID, "global-active").text == "version 1"
    events = server.shell(
        "from accounts.models import AuditEvent\n"
        "print(list(AuditEvent.objects.filter(actor_name='boss')"
        ".order_by('id').values_list('action', flat=True)))"
    )
    assert "['promote', 'rollback']" in events


def test_an_operator_is_refused_the_models_page(server, browser):
    from selenium.webdriver.common.by import By

    login(browser, server, "op1")
    browser.get(f"{server.http_url}/models/")
    assert "403 Forbidden" in browser.find_element(By.TAG_NAME, "h1").text
