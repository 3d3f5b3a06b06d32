"""The retraining task: ``manage.py retrain --job ID`` in a process of its own.

A process of its own runs at the batch priority (``EYESCREAM_BATCH_PRIORITY``, ``SCHED_IDLE``
by default, below the worker's own), keeps PyTorch's memory out of the worker, and is the
same code path as the command. The job row tells the models page how it goes; a process that
dies without finishing the row (killed, out of memory) leaves it ``failed`` with its output.
"""

from __future__ import annotations

import subprocess
import sys

from celery import shared_task
from django.conf import settings

from .registry_link import get_job

OUTPUT_TAIL = 4000


@shared_task(name="feedback.retrain", ignore_result=True)
def retrain_job(job_id: int) -> None:
    command = [
        sys.executable,
        str(settings.BASE_DIR / "manage.py"),
        "retrain",
        "--job",
        str(job_id),
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=settings.BASE_DIR)
    job = get_job(job_id)
    if job.status in ("queued", "running"):
        output = (done.stdout + done.stderr)[-OUTPUT_TAIL:]
        message = f"the retraining process ended with exit status {done.returncode}"
        job.end("failed", message, log=output)
