"""The whole live path with real processes, real audio and the active (shipped) model.

Scaled mode: daphne + ``manage.py runworker detection-score`` + Redis (a spare database) +
PostgreSQL (a database created for this module and dropped after it). Embedded mode: daphne
alone with its SQLite file, the in-memory channel layer and the scorer in-process.

A device streams a real scream recording with the reference client (``python -m
devices.client``), faster than real time within the protocol's rate guard: exactly one alert is
stored, its snippet is playable audio cut from that recording around the labelled scream, and
an operator's dashboard WebSocket received ``alert.created``. Real non-scream recordings
(alarm, siren, laughing, speech, street traffic) give no alert. Killing the scoring worker in
the middle of a stream neither closes the stream nor loses audio, and a scream streamed after
the worker was restarted still gives its alert; killing daphne's alert writer processes just
before a scream loses neither the alert nor the stream.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from detection.artifact_config import read_model_config
from devices.client.sources import load_file
from devices.client.streamer import Streamer
from tests.devices.live import REPO, LiveServer

from .e2e import (
    Dashboard,
    alert_rows,
    alert_writer_pids,
    fetch,
    locate,
    operator_session,
    postgres_database,
    read_labels,
    stream_file,
)
from .workers import ScoringWorker, redis_url, worker_answers

pytestmark = pytest.mark.slow

# Chosen once with ``manage.py detect`` on the shipped model (one segment, at least 3 s long).
SCREAM = "audio/screamdet-main/femaleScream-004.flac"
# One of each kind of look-alike the pack has (alarm, siren, laughing, speech, street traffic).
NON_SCREAMS = (
    "audio/sharwin-sounds/alarm_small_0.flac",
    "audio/street-atmos/Police.flac",
    "audio/sharwin-sounds/laugh_small_1.flac",
    "audio/speech-tr/file11.flac",
    "audio/street-atmos/city-traffic-outdoor-6414.flac",
    "audio/street-atmos/train-station-automated-announcement-au-accent-lonely-ambience-8264.flac",
)
BACKGROUND = (
    "audio/street-atmos/city-traffic-outdoor-6414.flac"  # streamed while the worker is restarted
)
SPEED = 4.0  # x real time: the protocol's rate guard allows 45 s ahead plus 4x wall time
FALSE_ALERTS_PER_HOUR_MAX = 1.0


def model_dir() -> Path:
    path = Path(os.environ.get("EYESCREAM_MODEL_DIR", REPO / "detection" / "shipped" / "default"))
    if not (path / "config.json").is_file():  # a checkout before the shipped model was added
        pytest.skip(f"no model artifact at {path} (the end-to-end tests need the active model)")
    return path


def devices_spec() -> dict:
    names = ["scream", "restart", "writers"] + [f"quiet-{i}" for i in range(len(NON_SCREAMS))]
    return {name: {} for name in names}


def start(server: LiveServer) -> dict:
    server.migrate()
    devices = server.make_devices(devices_spec())
    session = operator_session(server)
    server.start(timeout=60)
    return {"devices": devices, "session": session}


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("e2e-scaled")
    url = redis_url()
    with postgres_database(f"eyescream_e2e_{os.getpid()}") as database_url:
        env = {
            "REDIS_URL": url,
            "DATABASE_URL": database_url,
            "EYESCREAM_MODEL_DIR": str(model_dir()),
            "OMP_NUM_THREADS": "1",
        }
        server = LiveServer(folder / "data", env)
        worker = ScoringWorker(server.env, folder / "worker.log")
        try:
            state = start(server)
            worker.start()
            asyncio.run(worker_answers(url, Path(env["EYESCREAM_MODEL_DIR"]), timeout=120))
            yield {"server": server, "worker": worker, **state}
        finally:
            worker.stop()
            server.stop()
        import redis

        redis.Redis.from_url(url).flushdb()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    server = LiveServer(
        tmp_path_factory.mktemp("e2e-embedded") / "data",
        {"EYESCREAM_MODEL_DIR": str(model_dir()), "OMP_NUM_THREADS": "1"},
    )
    try:
        yield {"server": server, **start(server)}
    finally:
        server.stop()


def no_server_errors(server: LiveServer) -> None:
    log = server.log()
    assert "Traceback" not in log, log[-4000:]


async def stream_and_expect_one_alert(setup: dict, real_v1: Path, device: str) -> dict:
    server, session = setup["server"], setup["session"]
    device_id, token = setup["devices"][device]["id"], setup["devices"][device]["token"]
    async with Dashboard(server, session) as dashboard:
        summary = await stream_file(server, token, real_v1 / SCREAM, SPEED)
        # The stream's end closes the incident: the alert gets its end and its full snippet.
        await dashboard.wait_for(
            lambda: dashboard.closing_update(device_id),
            30,
            "the closing alert.updated",
        )
        await asyncio.sleep(1.0)  # nothing else may follow
    created = dashboard.alerts("alert.created", device_id)
    final = dashboard.closing_update(device_id)
    return {"summary": summary, "created": created, "final": final}


def check_scream_alert(setup: dict, real_v1: Path, result: dict, device: str) -> None:
    server = setup["server"]
    device_id = setup["devices"][device]["id"]
    summary = result["summary"]
    assert summary["connections"] == 1 and summary["dropped_samples"] == 0, summary
    assert summary["acked_samples"] == summary["captured_samples"], summary
    assert len(result["created"]) == 1, result["created"]
    alert = result["created"][0][1]
    assert alert["model_version"] and 0.0 < alert["peak_score"] <= 1.0
    rows = alert_rows(server, [device_id])
    assert len(rows) == 1, rows
    assert rows[0]["id"] == alert["id"] == result["final"]["id"] and rows[0]["ended"]

    # The snippet is playable audio, cut from this recording around the labelled scream.
    data = fetch(server, result["final"]["snippet_url"], setup["session"])
    snippet, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    assert snippet.ndim == 1 and len(snippet) / rate > 1.0
    source, source_rate = soundfile.read(real_v1 / SCREAM, dtype="float32")
    assert rate == source_rate == 22_050  # the model rate: no resampling on the way
    offset, correlation = locate(snippet, source)
    assert correlation > 0.99, correlation  # the same samples (int16 on the wire)
    begin, end = offset / rate, (offset + len(snippet)) / rate
    screams = [(s, e) for s, e, label in read_labels(real_v1 / SCREAM.replace(".flac", ".txt"))]
    overlap = max(min(end, e) - max(begin, s) for s, e in screams)
    assert overlap >= 1.0, (begin, end, screams)


def second_stage_tag() -> str:
    """What the model's second stage appends to an alert's model version."""
    return f"+yamnet{read_model_config(model_dir())['second_stage']['weight']:g}"


def yamnet_heard(setup: dict) -> tuple[float, float]:
    """From daphne's /metrics: (windows YAMNet heard in daphne, requests daphne heard inline
    because no worker answered)."""
    text = fetch(setup["server"], "/metrics", setup["session"]).decode()
    heard = inline = 0.0
    for line in text.splitlines():
        if line.startswith('eyescream_yamnet_patches_total{process="ingest"}'):
            heard = float(line.split()[-1])
        elif line.startswith("eyescream_yamnet_inline_total "):
            inline = float(line.split()[-1])
    return heard, inline


def test_scaled_scream_gives_one_alert_with_its_snippet_on_the_dashboard(scaled, real_v1):
    result = asyncio.run(stream_and_expect_one_alert(scaled, real_v1, "scream"))
    check_scream_alert(scaled, real_v1, result, "scream")
    no_server_errors(scaled["server"])
    # The fused scores of the second stage, heard by the scoring worker, none in daphne.
    assert result["created"][0][1]["model_version"].endswith(second_stage_tag())
    assert yamnet_heard(scaled) == (0.0, 0.0)


def test_scaled_real_non_screams_give_no_false_alerts(scaled, real_v1):
    server = scaled["server"]
    names = [f"quiet-{i}" for i in range(len(NON_SCREAMS))]

    ids = [scaled["devices"][name]["id"] for name in names]

    async def scenario():
        async with Dashboard(server, scaled["session"]) as dashboard:
            summaries = await asyncio.gather(
                *(
                    stream_file(server, scaled["devices"][name]["token"], real_v1 / path, SPEED)
                    for name, path in zip(names, NON_SCREAMS, strict=True)
                )
            )
            await asyncio.sleep(2.0)  # every stream has ended: its alerts are stored by now
            rows = await asyncio.to_thread(alert_rows, server, ids)
            await dashboard.wait_for(  # and each of them was broadcast
                lambda: sum(len(dashboard.alerts("alert.created", i)) for i in ids) >= len(rows),
                15,
                f"alert.created for {len(rows)} stored alerts",
            )
        return dashboard, summaries, rows

    dashboard, summaries, rows = asyncio.run(scenario())
    seconds = sum(s["captured_samples"] / s["rate"] for s in summaries)
    assert seconds > 60, seconds
    for summary in summaries:
        assert summary["acked_samples"] == summary["captured_samples"], summary
    broadcast = [a for i in ids for a in dashboard.alerts("alert.created", i)]
    assert len(broadcast) == len(rows)
    per_hour = len(rows) / (seconds / 3600)
    print(f"false alerts: {len(rows)} in {seconds:.0f} s of real non-scream audio")
    assert per_hour <= FALSE_ALERTS_PER_HOUR_MAX, (per_hour, rows)


async def gated_frames(background: np.ndarray, scream: np.ndarray, rate: int, go, speed: float):
    """Background audio (looped) until ``go`` is set, then the scream and 1.5 s more
    background for the post-roll, paced at ``speed`` x real time in 200 ms frames."""
    frame = rate // 5
    t0, sent = time.monotonic(), 0

    async def paced(chunk: np.ndarray) -> bytes:
        nonlocal sent
        sent += len(chunk)
        await asyncio.sleep(max(0.0, t0 + sent / rate / speed - time.monotonic()))
        return chunk.tobytes()

    position = 0
    while not go.is_set():
        chunk = background[position : position + frame]
        position = (position + frame) % (len(background) - frame)
        yield await paced(chunk)
    for i in range(0, len(scream), frame):
        yield await paced(scream[i : i + frame])
    for i in range(0, int(1.5 * rate), frame):
        yield await paced(background[i : i + frame])


def background_then_scream(real_v1: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """The street background and the scream recording, mono, at their common rate."""
    background, rate = load_file(str(real_v1 / BACKGROUND))
    scream, scream_rate = load_file(str(real_v1 / SCREAM))
    assert rate == scream_rate and background.shape[1] == scream.shape[1] == 1
    return background, scream, rate


def start_gated_stream(server: LiveServer, token: str, real_v1: Path, go, name: str):
    """The reference client streaming background until ``go``, then the scream (a task)."""
    background, scream, rate = background_then_scream(real_v1)
    streamer = Streamer(server.ws_url, token, rate, 1, client_name=name)
    return asyncio.create_task(streamer.run(gated_frames(background, scream, rate, go, speed=2.0)))


def assert_nothing_reached_the_device(report) -> None:
    """One connection throughout, no error, every sample stored."""
    assert report.connections == 1 and report.errors == [], report
    assert report.dropped == 0 and report.acked == report.captured, report


def assert_one_alert(server, dashboard, device_id: int, report) -> tuple[dict, list[dict]]:
    """The stream went through intact and gave one alert, on the dashboard and in the database:
    ``(its alert.created message as (received_at, alert), its rows)``."""
    assert_nothing_reached_the_device(report)
    created = dashboard.alerts("alert.created", device_id)
    assert len(created) == 1, created
    rows = alert_rows(server, [device_id])
    assert len(rows) == 1, rows
    return created[0], rows


def test_scaled_worker_killed_mid_stream_and_restarted(scaled, real_v1):
    server, worker = scaled["server"], scaled["worker"]
    device_id = scaled["devices"]["restart"]["id"]
    token = scaled["devices"]["restart"]["token"]

    def worker_ready_count() -> int:
        return worker.log().count("scoring worker ready")

    async def scenario():
        async with Dashboard(server, scaled["session"]) as dashboard:
            go = asyncio.Event()
            streaming = start_gated_stream(server, token, real_v1, go, "e2e-restart")
            await asyncio.sleep(3.0)  # the worker is answering this stream
            ready_before = worker_ready_count()
            assert ready_before >= 1, worker.log()
            worker.kill()
            await asyncio.sleep(3.0)  # requests time out, are retried, then scored inline
            worker.start()
            deadline = time.monotonic() + 90
            while worker_ready_count() <= ready_before:  # the new worker answered a request
                assert time.monotonic() < deadline, worker.log()
                assert not streaming.done(), streaming
                await asyncio.sleep(0.2)
            restarted_at = time.time()
            go.set()
            report = await asyncio.wait_for(streaming, 120)
            await dashboard.wait_for(
                lambda: dashboard.alerts("alert.created", device_id), 30, "alert.created"
            )
            await asyncio.sleep(1.0)
        return dashboard, report, restarted_at

    dashboard, report, restarted_at = asyncio.run(scenario())
    (received_at, _), _ = assert_one_alert(server, dashboard, device_id, report)
    assert received_at > restarted_at  # the scream streamed after the restart
    log = server.log()
    assert "scoring inline" in log, log[-4000:]  # the kill really hit the stream
    assert "Traceback" not in log, log[-4000:]


def test_scaled_alert_writers_killed_mid_stream(scaled, real_v1):
    """Daphne's alert writer processes die just before an incident opens: the stream goes on,
    the alert is written all the same (one row, its snippet, on the dashboard), new writers
    take over."""
    server = scaled["server"]
    device_id = scaled["devices"]["writers"]["id"]
    token = scaled["devices"]["writers"]["token"]

    async def scenario():
        async with Dashboard(server, scaled["session"]) as dashboard:
            go = asyncio.Event()
            streaming = start_gated_stream(server, token, real_v1, go, "e2e-writers")
            deadline = time.monotonic() + 30
            while len(alert_writer_pids(server.process.pid)) < 2:  # started by the streams
                assert time.monotonic() < deadline, server.log()[-4000:]
                await asyncio.sleep(0.2)
            await asyncio.sleep(2.0)  # ready: their imports done
            killed = alert_writer_pids(server.process.pid)
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
            go.set()
            report = await asyncio.wait_for(streaming, 120)
            await dashboard.wait_for(
                lambda: dashboard.closing_update(device_id),
                30,
                "the closing alert.updated",
            )
            await asyncio.sleep(1.0)
        return dashboard, report, killed

    dashboard, report, killed = asyncio.run(scenario())
    (_, alert), rows = assert_one_alert(server, dashboard, device_id, report)
    assert rows[0]["id"] == alert["id"], rows
    assert rows[0]["ended"] and rows[0]["snippet"], rows
    final = dashboard.closing_update(device_id)
    data = fetch(server, final["snippet_url"], scaled["session"])
    snippet, snippet_rate = soundfile.read(io.BytesIO(data), dtype="float32")
    assert len(snippet) / snippet_rate > 1.0
    log = server.log()
    assert "alert writer 'open' died" in log and "opening in a thread" in log, log[-4000:]
    assert "Traceback" not in log, log[-4000:]
    # The final update started a new writer of its kind; the opening's starts at the next one.
    assert not set(killed) & set(alert_writer_pids(server.process.pid))


def test_embedded_scream_gives_one_alert_with_its_snippet_on_the_dashboard(embedded, real_v1):
    result = asyncio.run(stream_and_expect_one_alert(embedded, real_v1, "scream"))
    check_scream_alert(embedded, real_v1, result, "scream")
    no_server_errors(embedded["server"])
    assert result["created"][0][1]["model_version"].endswith(second_stage_tag())
    assert yamnet_heard(embedded)[0] > 0  # in embedded mode daphne hears the flagged windows
