"""A ``manage.py`` command, the Celery worker's tasks and the web app's views and health checks
start without torch: it takes more than a second to import, and most of these processes never
score audio (an operator's commands, a test's helpers). Only what scores or trains imports it
(daphne's scoring, the scoring worker, a retraining task when it runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CHECK = """
import sys
import django
django.setup()
import eyescream_site.urls, eyescream_site.celery, eyescream_site.readiness  # noqa
import alerts.tasks, feedback.tasks, notifications.tasks, registry.services  # noqa
print("torch" in sys.modules)
from detection.artifact_config import read_model_config
from detection.artifacts import load_model  # what scores audio imports torch
print("torch" in sys.modules)
"""


def test_django_setup_and_the_web_and_celery_modules_import_no_torch():
    result = subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=REPO,
        env={"DJANGO_SETTINGS_MODULE": "eyescream_site.settings", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["False", "True"]
