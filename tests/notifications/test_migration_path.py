"""From the global EYESCREAM_ALERT_WEBHOOK_URL to per-site webhook destinations."""

import pytest
from django.core.checks import run_checks
from django.core.management import CommandError, call_command

from devices.models import Site
from notifications.migration_path import IMPORTED_NAME
from notifications.models import Destination


def test_a_start_with_the_old_setting_warns(monkeypatch):
    assert "notifications.W001" not in [m.id for m in run_checks()]
    monkeypatch.setenv("EYESCREAM_ALERT_WEBHOOK_URL", "https://hooks.example/old")
    (warning,) = [m for m in run_checks() if m.id == "notifications.W001"]
    assert "import_webhook_setting" in warning.hint


def test_the_old_setting_becomes_a_destination_of_each_site_once(db, monkeypatch, capsys):
    Site.objects.create(name="Depot")
    Site.objects.create(name="Central Station")
    monkeypatch.setenv("EYESCREAM_ALERT_WEBHOOK_URL", "https://hooks.example/old")
    call_command("import_webhook_setting")
    made = Destination.objects.filter(name=IMPORTED_NAME)
    assert sorted(d.site.name for d in made) == ["Central Station", "Depot"]
    assert {(d.kind, d.url) for d in made} == {("webhook", "https://hooks.example/old")}
    assert len({d.secret for d in made}) == 1 and len(made[0].secret) >= 32
    assert made[0].events == ["alert.opened", "alert.ended"]
    assert f"signing secret (shown once): {made[0].secret}" in capsys.readouterr().out
    call_command("import_webhook_setting")
    assert Destination.objects.count() == 2
    assert "every site has it already" in capsys.readouterr().out


def test_a_bad_url_or_site_is_refused(db):
    Site.objects.create(name="Depot")
    with pytest.raises(CommandError, match="http:// or https://"):
        call_command("import_webhook_setting", "--url", "hooks.example")
    with pytest.raises(CommandError, match="no site named Nowhere"):
        call_command("import_webhook_setting", "--url", "https://x.example", "--site", "Nowhere")
    assert not Destination.objects.exists()
