"""CPU priority: daphne and the scoring worker take EYESCREAM_LIVE_NICE, batch commands take
EYESCREAM_BATCH_PRIORITY (SCHED_IDLE by default), every thread of the process is set, a refused
raise is a warning, and a bad value stops the settings from loading. Real processes; the test
process's own priority is left alone."""

import os
import subprocess
import sys
import time

import pytest

from eyescream_site.cpu_priority import batch_nice, parse_nice
from tests.devices.live import (
    PYTHON,
    REPO,
    SCHED_IDLE,
    LiveServer,
    child_pids,
    stop_process,
    thread_nices,
    thread_policies,
)
from tests.live.workers import ScoringWorker, redis_url, start_celery_worker


def run_python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_parse_nice_reads_the_range_and_rejects_the_rest():
    assert parse_nice("X", None) is None
    assert parse_nice("X", "  ") is None
    assert parse_nice("X", "-20") == -20
    assert parse_nice("X", " 19 ") == 19
    assert parse_nice("X", "Idle", idle_allowed=True) == "idle"
    for bad in ("20", "-21", "ten", "1.5", "idle"):
        with pytest.raises(ValueError, match=f"X must be a nice value from -20 to 19, got '{bad}'"):
            parse_nice("X", bad)
    with pytest.raises(ValueError, match='X must be "idle" or a nice value from -20 to 19'):
        parse_nice("X", "low", idle_allowed=True)


def test_batch_work_never_takes_a_higher_priority_than_it_started_with():
    assert batch_nice(0, 10) == 10
    assert batch_nice(15, 10) == 15
    assert batch_nice(-5, 0) == 0


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("EYESCREAM_LIVE_NICE", "-21", "must be a nice value from -20 to 19, got '-21'"),
        ("EYESCREAM_LIVE_NICE", "idle", "must be a nice value from -20 to 19, got 'idle'"),
        ("EYESCREAM_BATCH_PRIORITY", "low", 'must be "idle" or a nice value from -20 to 19'),
    ],
)
def test_a_bad_setting_stops_the_settings_from_loading(name, value, message):
    result = run_python(
        "import django; django.setup()",
        {"DJANGO_SETTINGS_MODULE": "eyescream_site.settings", name: value},
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{name} {message}" in result.stderr


def test_every_thread_takes_the_value_and_later_threads_inherit_it():
    target = min(19, os.getpriority(os.PRIO_PROCESS, 0) + 4)
    code = f"""
import os, threading
from pathlib import Path
from eyescream_site.cpu_priority import set_nice
from tests.devices.live import thread_nices
stop = threading.Event()
before = threading.Thread(target=stop.wait)
before.start()
print("RESULT", set_nice({target}, "test"), end=" ")
after = threading.Thread(target=stop.wait)
after.start()
print(sorted(set(thread_nices(os.getpid()))), len(thread_nices(os.getpid())) >= 3)
stop.set()
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("RESULT", 1)[1].split() == [str(target), f"[{target}]", "True"]


def test_a_refused_raise_is_a_warning_and_the_process_runs_on():
    # An unprivileged process may not raise its priority (as root, the child drops to nobody).
    code = """
import logging, os
from eyescream_site.cpu_priority import current_nice, set_nice
logging.basicConfig(level=logging.INFO)
if os.geteuid() == 0:  # imports first: nobody may not read this Python's files
    os.setgid(65534)
    os.setuid(65534)
start = current_nice()
got = set_nice(start - 5, "live")
print("RESULT", got == start == current_nice())
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("RESULT", 1)[1].strip() == "True"
    assert "not allowed to take nice" in result.stderr
    assert "needs root or CAP_SYS_NICE" in result.stderr


def test_daphne_and_the_scoring_worker_take_the_live_setting(tmp_path):
    # Lowering a priority is always allowed, so the test runs the same as root or not.
    target = min(19, os.getpriority(os.PRIO_PROCESS, 0) + 3)
    env = {"EYESCREAM_LIVE_NICE": str(target), "LOG_LEVEL": "INFO"}
    server = LiveServer(tmp_path / "data", env)
    worker = ScoringWorker({**server.env, "REDIS_URL": redis_url()}, tmp_path / "w.log")
    server.migrate()
    server.start()
    worker.start()
    daphne_pid = server.process.pid
    try:
        assert set(thread_nices(daphne_pid)) == {target}, server.log()
        deadline = time.monotonic() + 60
        while f"live process {worker.process.pid}: nice {target}" not in worker.log():
            assert worker.process.poll() is None, worker.log()
            assert time.monotonic() < deadline, worker.log()
            time.sleep(0.2)
        assert set(thread_nices(worker.process.pid)) == {target}
    finally:
        worker.stop()
        server.stop()
    assert f"live process {daphne_pid}: nice {target}" in server.log()


BATCH_COMMANDS = [
    ["detect", "{clip}"],
    ["evaluate", "--data", "{missing}", "--model", "detection/shipped/default"],
    ["train", "--data", "{missing}", "--out", "{missing}/model"],
    ["retrain", "--since", "{missing}"],  # the retrain button's job is this command too
]


def run_batch_command(command, real_v1, tmp_path, priority):
    assert os.sched_getscheduler(0) != os.SCHED_IDLE, "an earlier test left pytest in SCHED_IDLE"
    clip = real_v1 / "audio" / "cats-dogs" / "cat_1.flac"
    args = [a.format(clip=clip, missing=tmp_path / "missing") for a in command]
    env = {**os.environ, "LOG_LEVEL": "INFO", "EYESCREAM_DATA_DIR": str(tmp_path / "data")}
    env.pop("EYESCREAM_BATCH_PRIORITY", None)
    if priority is not None:
        env["EYESCREAM_BATCH_PRIORITY"] = priority
    result = subprocess.run(
        [str(PYTHON), "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if command[0] == "detect":  # runs through
        assert result.returncode == 0, result.stderr
        assert "cat_1.flac" in result.stdout
    else:  # stops at the missing folder, after it took its priority
        assert result.returncode != 0
        assert "missing" in result.stderr
    return result.stderr


@pytest.mark.parametrize("command", BATCH_COMMANDS)
def test_batch_commands_run_under_sched_idle_by_default(command, real_v1, tmp_path):
    """The policy is taken as the command starts: every thread is read while it runs, then the
    command is stopped (under SCHED_IDLE it may wait minutes for a CPU on a busy host)."""
    assert os.sched_getscheduler(0) != os.SCHED_IDLE, "an earlier test left pytest in SCHED_IDLE"
    clip = real_v1 / "audio" / "cats-dogs" / "cat_1.flac"
    args = [a.format(clip=clip, missing=tmp_path / "missing") for a in command]
    env = {**os.environ, "LOG_LEVEL": "INFO", "EYESCREAM_DATA_DIR": str(tmp_path / "data")}
    env.pop("EYESCREAM_BATCH_PRIORITY", None)
    log_path = tmp_path / "stderr.log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(
            [str(PYTHON), "manage.py", *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    try:
        deadline = time.monotonic() + 120
        while "batch process" not in log_path.read_text():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        policies = set(thread_policies(process.pid)) if process.poll() is None else None
    finally:
        stop_process(process)
    log = log_path.read_text()
    assert f"batch process {process.pid}: SCHED_IDLE" in log
    assert policies in (None, {SCHED_IDLE}), policies  # None: it had already ended


def test_a_batch_command_takes_a_nice_value_but_never_a_higher_priority(real_v1, tmp_path):
    start = os.getpriority(os.PRIO_PROCESS, 0)
    assert start < 19, "this test needs to run below nice 19"
    log = run_batch_command(BATCH_COMMANDS[0], real_v1, tmp_path, "19")
    assert f"nice 19 (was {start})" in log
    log = run_batch_command(BATCH_COMMANDS[0], real_v1, tmp_path, str(start - 1))
    assert "batch process" not in log  # stays at its own nice value, no warning
    assert "not allowed" not in log


def test_sched_idle_reaches_every_thread_and_the_threads_after_it():
    code = """
import os, threading
from eyescream_site.cpu_priority import set_idle
from tests.devices.live import thread_policies
stop = threading.Event()
threading.Thread(target=stop.wait).start()
set_idle("test")
threading.Thread(target=stop.wait).start()
print("RESULT", sorted(set(thread_policies(os.getpid()))), len(thread_policies(os.getpid())) >= 3)
stop.set()
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("RESULT", 1)[1].split() == [f"[{SCHED_IDLE}]", "True"]


def test_without_sched_idle_batch_work_takes_the_lowest_nice_value():
    # A system without the policy (not Linux): the module falls back to nice 19.
    code = """
import os
from eyescream_site.cpu_priority import is_idle, set_idle
from tests.devices.live import thread_nices
del os.SCHED_IDLE
set_idle("test")
print("RESULT", is_idle(), sorted(set(thread_nices(os.getpid()))))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("RESULT", 1)[1].split() == ["False", "[19]"]


@pytest.mark.parametrize("priority", [None, "+4"])
def test_a_celery_worker_and_its_pool_take_the_task_priority(priority, tmp_path):
    """Default ``idle``: the worker and the pool processes it forks run under SCHED_IDLE, and
    the worker drew a picture before it forked them."""
    env = {**os.environ, "REDIS_URL": redis_url(), "EYESCREAM_DATA_DIR": str(tmp_path)}
    env.pop("EYESCREAM_TASK_PRIORITY", None)
    nice = None
    if priority:
        nice = min(19, os.getpriority(os.PRIO_PROCESS, 0) + int(priority))
        env["EYESCREAM_TASK_PRIORITY"] = str(nice)
    log_path = tmp_path / "celery.log"
    worker = start_celery_worker(env, log_path, "--loglevel=INFO")
    try:
        for pid in [worker.pid, *child_pids(worker.pid)]:
            if nice is None:
                assert set(thread_policies(pid)) == {SCHED_IDLE}, pid
            else:
                assert set(thread_nices(pid)) == {nice}, pid
                assert SCHED_IDLE not in thread_policies(pid)
    finally:
        stop_process(worker)
    log = log_path.read_text()
    assert "task process" in log
    assert "pictures prepared in" in log  # before the pool forked: its processes inherit them
