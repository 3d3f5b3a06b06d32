"""One stream's live scoring without Django: gate, in-process scorer, decisions, snippets."""

import asyncio

import numpy as np
import pytest

from detection.decision import DecisionConfig
from detection.features import FeatureConfig
from detection.scoring import features_key
from devices.protocol import Hello
from live.scoring_client import ScoringClient
from live.stream_scoring import MAX_SNIPPET_S, POST_ROLL_S, PRE_ROLL_S, StreamScoring
from live.stream_state import DeviceStream
from tests.detection.tiny_model import make_artifact

RATE = 16_000
# Every scored window counts (the tiny model is untrained); gated (silent) ones give 0.
DECISION = DecisionConfig(
    on_threshold=1e-6,
    off_threshold=1e-6,
    smoothing_windows=1,
    min_duration_s=0.0,
    merge_gap_s=0.5,
    cooldown_s=0.0,
    level_gate_dbfs=-50.0,
)


class AlertLog:
    def __init__(self):
        self.opened: list[dict] = []
        self.updated: list[tuple[int, dict]] = []

    async def open_alert(self, **kwargs):
        self.opened.append(kwargs)
        return 7

    async def update_alert(self, alert_id, **kwargs):
        self.updated.append((alert_id, kwargs))


def test_a_loud_burst_gives_one_alert_with_pre_and_post_roll(tmp_path):
    model_dir = make_artifact(tmp_path / "model", seed=4)
    rng = np.random.default_rng(0)
    audio = np.concatenate(
        [
            np.zeros(3 * RATE, np.float32),
            rng.normal(0, 0.2, 4 * RATE).astype(np.float32),  # about -14 dBFS
            np.zeros(4 * RATE, np.float32),
        ]
    )
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    frame = RATE // 5
    clock = [0.0]
    stream = DeviceStream(
        Hello("tok", RATE, "pcm_s16le", 1, "test"), FeatureConfig(), 0.1, clock=lambda: clock[0]
    )
    alerts = AlertLog()

    async def main():
        client = ScoringClient(None, features_key(stream.cfg), model_dir=model_dir)
        scoring = StreamScoring(
            stream,
            client,
            DECISION,
            alerts.open_alert,
            alerts.update_alert,
            device_id=3,
            clock=lambda: 1_000_000 + clock[0],  # real time, as the stream is fed
            owner="specific.test!1",
        )
        for start in range(0, len(pcm), frame):
            clock[0] += 0.2
            scoring.push(stream.feed(pcm[start : start + frame].tobytes(), now=clock[0]))
            await asyncio.sleep(0.02)  # let scoring keep up, as in real time
        await client.close()
        await scoring.close()
        return scoring

    scoring = asyncio.run(main())
    assert scoring.gate.gated > 0 and scoring.gate.scored > 0
    assert len(alerts.opened) == 1
    opened = alerts.opened[0]
    assert opened["device_id"] == 3 and opened["snippet_rate"] == stream.cfg.sample_rate
    assert opened["model_version"]
    assert opened["stream"] == "specific.test!1" and opened["time_source"] == "arrival"
    started = (opened["started_at"] - opened["snippet_started_at"]).total_seconds()
    assert started == pytest.approx(PRE_ROLL_S, abs=0.05)
    assert len(opened["snippet"]) >= PRE_ROLL_S * stream.cfg.sample_rate

    final = [kw for _, kw in alerts.updated if kw.get("ended_at") is not None]
    assert len(final) == 1 and all(alert_id == 7 for alert_id, _ in alerts.updated)
    final = final[0]
    duration = (final["ended_at"] - opened["started_at"]).total_seconds()
    # The 4 s burst plus up to one window (1.07 s) on each side that overlaps its edges.
    assert 4.0 <= duration <= 6.2
    snippet_s = len(final["snippet"]) / stream.cfg.sample_rate
    assert snippet_s == pytest.approx(PRE_ROLL_S + duration + POST_ROLL_S, abs=0.1)
    # The snippet is the stream's audio: silent pre-roll, then the burst.
    snippet = final["snippet"]
    rate = stream.cfg.sample_rate
    assert np.abs(snippet[: rate // 2]).max() < 1e-3
    assert np.abs(snippet[int(3.5 * rate) : int(4.5 * rate)]).std() > 0.1
    times = [t for t, _ in final["score_curve"]]
    assert times == sorted(times) and 0 <= times[0] and times[-1] <= snippet_s + 3


def test_alert_threads_per_kind_follow_the_setting(settings):
    """Live alerts are written by ``EYESCREAM_ALERT_THREADS`` threads of each kind (1 unless
    set): every one of them that is ready to run competes with the streams' event loop."""
    from live.scoring_setup import _alert_threads

    _alert_threads.cache_clear()
    try:
        assert _alert_threads("open")._max_workers == 1
        _alert_threads.cache_clear()
        settings.EYESCREAM_ALERT_THREADS = 3
        pools = [_alert_threads("open"), _alert_threads("update")]
        assert [pool._max_workers for pool in pools] == [3, 3]
        assert pools[0] is not pools[1] and _alert_threads("open") is pools[0]
    finally:
        for pool in [_alert_threads("open"), _alert_threads("update")]:
            pool.shutdown(wait=False)
        _alert_threads.cache_clear()


def run_burst(tmp_path, burst_s: float, **options) -> tuple[AlertLog, int]:
    """Feed 4 s of silence, a ``burst_s`` loud burst and 3 s of silence at real-time pace."""
    model_dir = make_artifact(tmp_path / "model", seed=4)
    rng = np.random.default_rng(1)
    audio = np.concatenate(
        [
            np.zeros(4 * RATE, np.float32),
            rng.normal(0, 0.2, int(burst_s * RATE)).astype(np.float32),
            np.zeros(3 * RATE, np.float32),
        ]
    )
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    frame = RATE // 5
    clock = [0.0]
    stream = DeviceStream(
        Hello("tok", RATE, "pcm_s16le", 1, "test"), FeatureConfig(), 0.1, clock=lambda: clock[0]
    )
    alerts = AlertLog()

    async def main():
        client = ScoringClient(None, features_key(stream.cfg), model_dir=model_dir)
        scoring = StreamScoring(
            stream,
            client,
            DECISION,
            alerts.open_alert,
            alerts.update_alert,
            device_id=3,
            clock=lambda: 1_000_000 + clock[0],
            **options,
        )
        for start in range(0, len(pcm), frame):
            clock[0] += 0.2
            scoring.push(stream.feed(pcm[start : start + frame].tobytes(), now=clock[0]))
            await asyncio.sleep(0.01)
        await client.close()
        await scoring.close()

    asyncio.run(main())
    return alerts, stream.cfg.sample_rate


def final_of(alerts: AlertLog) -> dict:
    (final,) = [kw for _, kw in alerts.updated if kw.get("ended_at") is not None]
    return final


def test_a_long_incident_is_kept_whole_from_pre_roll_to_post_roll(tmp_path):
    # 30 s of screaming: longer than the 20 s snippets once were, well inside the bound.
    assert MAX_SNIPPET_S >= 60
    alerts, rate = run_burst(tmp_path, 30.0)
    (opened,) = alerts.opened
    final = final_of(alerts)
    duration = (final["ended_at"] - opened["started_at"]).total_seconds()
    assert 30.0 <= duration <= 32.2
    snippet_s = len(final["snippet"]) / rate
    assert snippet_s == pytest.approx(PRE_ROLL_S + duration + POST_ROLL_S, abs=0.1)
    assert final["score_curve"][-1][0] >= PRE_ROLL_S + 29.0  # the curve covers it all too


def test_past_the_bound_the_snippet_keeps_its_start_and_the_alert_its_whole_span(tmp_path):
    alerts, rate = run_burst(tmp_path, 20.0, max_snippet_s=8.0)
    (opened,) = alerts.opened
    final = final_of(alerts)
    assert len(final["snippet"]) == 8 * rate  # the first 8 s: pre-roll and the onset
    assert np.abs(final["snippet"][:rate]).max() < 1e-3  # begins with the silent pre-roll
    duration = (final["ended_at"] - opened["started_at"]).total_seconds()
    assert duration >= 20.0  # the alert's end is the incident's, not the snippet's
    assert max(t for t, _ in final["score_curve"]) <= 8.0


def test_the_bound_must_leave_room_for_the_pre_and_post_roll():
    with pytest.raises(ValueError, match="pre- and post-roll"):
        StreamScoring(None, None, DECISION, None, None, device_id=1, max_snippet_s=2.5)
