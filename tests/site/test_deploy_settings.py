"""The scaled mode is a production deployment: ``check --deploy`` is clean with the settings
``docs/operations.md`` documents, secrets are never defaulted (no start without them), DEBUG is
refused, and cookies, HSTS and the HTTPS redirect are on."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
    "DJANGO_ALLOWED_HOSTS": "screams.example.org",
    "DJANGO_DEBUG": "0",
}


def production(tmp_path: Path, **env: str) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "EYESCREAM_", "REDIS_URL", "DATABASE_URL"))
    }
    return {
        **base,
        **PRODUCTION,
        "DJANGO_SETTINGS_MODULE": "eyescream_site.settings",
        "EYESCREAM_DATA_DIR": str(tmp_path),
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "EYESCREAM_DEVICE_TOKEN_KEY": secrets.token_urlsafe(50),
        **env,
    }


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path):
    result = manage(production(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_fails_where_the_embedded_defaults_would_be_served(tmp_path):
    env = {k: v for k, v in production(tmp_path).items() if k not in PRODUCTION}
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout  # no HSTS outside the scaled mode


@pytest.mark.parametrize(
    "change, message",
    [
        ({"DJANGO_SECRET_KEY": ""}, "needs DJANGO_SECRET_KEY"),
        ({"DJANGO_SECRET_KEY": "short-and-guessable"}, "needs DJANGO_SECRET_KEY"),
        ({"DJANGO_SECRET_KEY": "a" * 60}, "needs DJANGO_SECRET_KEY"),
        ({"EYESCREAM_DEVICE_TOKEN_KEY": ""}, "needs EYESCREAM_DEVICE_TOKEN_KEY"),
        ({"DJANGO_DEBUG": "1"}, "refuses it"),
    ],
)
def test_the_scaled_mode_refuses_to_start_without_its_secrets_or_with_debug(
    tmp_path, change, message
):
    env = production(tmp_path, **change)
    result = manage(env, "check")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr
    assert not (tmp_path / "secret_key").exists()  # nothing was made up in its place


SHOW_HEADERS = """
import json
from django.test import Client
client = Client(HTTP_HOST="screams.example.org")
plain = client.get("/accounts/login/")
secure = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
print("RESULT" + json.dumps({
    "plain": [plain.status_code, plain.get("Location", "")],
    "status": secure.status_code,
    "headers": dict(secure.headers),
    "cookies": {name: dict(c) for name, c in secure.cookies.items()},
}))
"""


def test_the_scaled_mode_sends_hsts_and_cookies_over_https_only(tmp_path):
    result = manage(production(tmp_path), "shell", "--no-imports", "-c", SHOW_HEADERS)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.split("RESULT", 1)[1])
    assert seen["plain"] == [301, "https://screams.example.org/accounts/login/"]
    assert seen["status"] == 200
    headers = seen["headers"]
    hsts = headers["Strict-Transport-Security"]
    assert "max-age=31536000" in hsts and "includeSubDomains" in hsts
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert seen["cookies"]["csrftoken"]["secure"] is True
    assert seen["cookies"]["csrftoken"]["samesite"] == "Lax"
