"""The second stage heard by a real scoring worker over the real Redis channel layer: the
scores are those the ingest process would have computed, requests of several streams go
together, and an error answer or a dead worker has the windows heard inline."""

import asyncio
import time

import numpy as np
import pytest
import soundfile as sf
from channels_redis.core import RedisChannelLayer

from detection.dataset import scan
from detection.yamnet_weights import load_yamnet
from live.yamnet_batches import PatchJob, score_jobs
from live.yamnet_messages import (
    decode_patch_jobs,
    encode_patches_request,
    patches_result,
    split_scores,
)
from live.yamnet_remote import close_remote, remote_batches
from tests.detection.tiny_model import make_artifact

from .workers import ScoringWorker, layer_hosts, redis_url


@pytest.fixture(scope="module")
def yamnet():
    return load_yamnet()


@pytest.fixture(scope="module")
def recordings(real_v1):
    """Three real recordings with screams, as model-rate (22.05 kHz) mono audio."""
    picked = []
    for recording in scan(real_v1).recordings:
        if recording.has_scream and 3.0 < sf.info(str(recording.path)).duration < 10.0:
            audio, rate = sf.read(str(recording.path), dtype="float32")
            picked.append((audio if audio.ndim == 1 else audio.mean(1), rate))
        if len(picked) == 3:
            return picked
    raise AssertionError("real-v1 has fewer than three short scream recordings")


def jobs_of(yamnet, recordings) -> list[PatchJob]:
    """One job per stream: a few flagged windows each, cut from the middle of its audio."""
    return [
        PatchJob(yamnet, audio[rate:], rate, 1.0 + np.arange(2 + k) * 0.1, 1.0, 1.0)
        for k, (audio, rate) in enumerate(recordings)
    ]


def test_a_request_survives_the_trip_and_bad_ones_are_refused(yamnet, recordings):
    jobs = jobs_of(yamnet, recordings)
    message = encode_patches_request(jobs, "reply", "r1")
    decoded = decode_patch_jobs(message, yamnet)
    for sent, got in zip(jobs, decoded, strict=True):
        assert (got.rate, got.span_s, got.offset_s) == (sent.rate, sent.span_s, sent.offset_s)
        np.testing.assert_array_equal(got.audio, sent.audio)
        np.testing.assert_array_equal(got.starts_s, sent.starts_s)

    def refused(change: dict, words: str) -> None:
        bad = {**message, "jobs": [{**message["jobs"][0], **change}]}
        with pytest.raises(ValueError, match=words):
            decode_patch_jobs(bad, yamnet)

    refused({"rate": 4000}, "not between 8 and 192 kHz")
    refused({"audio": b""}, "not 1 to 60 s of audio")
    refused({"starts": np.array([np.nan]).tobytes()}, "finite window starts")
    refused({"audio": b"\x00\x01\x02"}, "malformed job")
    refused({"span": 0.0}, "out of range")
    with pytest.raises(ValueError, match="non-empty list of jobs"):
        decode_patch_jobs({**message, "jobs": []}, yamnet)
    many = {**message, "jobs": message["jobs"][:1] * 2049}
    with pytest.raises(ValueError, match="at most 4096"):
        decode_patch_jobs(many, yamnet)

    scores = [np.full(len(job.starts_s), k, np.float32) for k, job in enumerate(jobs)]
    answer = patches_result("r1", scores)
    for got, want in zip(split_scores(answer, jobs), scores, strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="scores answer"):
        split_scores(patches_result("r1", scores[:2]), jobs)
    with pytest.raises(RuntimeError, match="scoring worker: broken"):
        split_scores(patches_result("r1", None, error="broken"), jobs)


@pytest.mark.slow
@pytest.mark.scaled
def test_the_worker_hears_the_windows_and_without_it_they_are_heard_inline(
    tmp_path, yamnet, recordings
):
    url = redis_url()
    model_dir = make_artifact(tmp_path / "model", seed=5)  # no second stage: YAMNet on demand
    worker = ScoringWorker(
        {"REDIS_URL": url, "EYESCREAM_MODEL_DIR": str(model_dir)}, tmp_path / "worker.log"
    )
    jobs = jobs_of(yamnet, recordings)
    here = score_jobs(jobs)
    assert max(float(s.max()) for s in here) > 0.3  # screams: the scores say something

    async def main():
        layer = RedisChannelLayer(hosts=layer_hosts(url))
        batches = remote_batches(layer, timeout_s=60.0)  # the first waits for the worker
        remote = batches.run
        worker.start()
        together = await asyncio.gather(*(batches.scores(job) for job in jobs))
        assert remote.answered == 1 and remote.inline == 0, worker.log()
        assert batches.batches == 1  # three streams, one request

        # A request the worker refuses (a rate no device sends) is heard here.
        remote.timeout_s = 5.0
        odd = PatchJob(yamnet, jobs[0].audio[::3].copy(), 7350, jobs[0].starts_s, 1.0, 1.0)
        inline_odd = await batches.scores(odd)
        assert remote.answered == 1 and remote.inline == 1

        # No worker: after the timeout the windows are heard here.
        worker.kill()
        remote.timeout_s = 0.5
        alone = await batches.scores(jobs[1])
        assert remote.inline == 2 and remote.requests == 3 and remote.down

        # While no worker answers, the next batches are heard here at once (no timeout each),
        # and a probe a second asks the workers again: a restarted worker takes over.
        started = time.monotonic()
        await batches.scores(jobs[2])
        assert time.monotonic() - started < 0.4 and remote.inline == 3
        worker.start()
        deadline = time.monotonic() + 120
        while remote.down:
            assert time.monotonic() < deadline, worker.log()
            await batches.scores(jobs[0])
            await asyncio.sleep(0.2)
        answered = remote.answered
        back = await batches.scores(jobs[1])
        assert remote.answered == answered + 1, worker.log()
        np.testing.assert_allclose(back, alone, atol=1e-6)
        await close_remote(layer)
        await layer.flush()
        return together, inline_odd, alone

    try:
        together, inline_odd, alone = asyncio.run(main())
    finally:
        worker.stop()
    for got, want in zip(together, here, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)  # the same patches, the same YAMNet
    np.testing.assert_allclose(alone, here[1], atol=1e-6)
    odd = PatchJob(yamnet, jobs[0].audio[::3].copy(), 7350, jobs[0].starts_s, 1.0, 1.0)
    np.testing.assert_allclose(inline_odd, score_jobs([odd])[0], atol=1e-6)
    assert "rate 7350 Hz is not between 8 and 192 kHz" in worker.log()
