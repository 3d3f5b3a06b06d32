"""YAMNet's second stage: the fusion, its gate, and the same scores offline and live."""

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given
from hypothesis import strategies as st

from detection.artifacts import ArtifactError, load_model, read_model_config
from detection.dataset import scan
from detection.evaluation import Scored
from detection.features import FeatureConfig, resample, resampler_delay_s
from detection.fusion import SecondStageConfig, cascade, fuse, gate_for, held
from detection.inference import detect_file, second_stage_scores
from detection.second_stage import SecondStage, patch_starts
from detection.second_stage_choice import choose, compare, comparison_md, fused_scored
from detection.yamnet import PATCH_SAMPLES, SAMPLE_RATE
from detection.yamnet_weights import load_yamnet
from devices.protocol import Hello
from live.second_opinion import SecondOpinion
from live.stream_state import DeviceStream
from live.yamnet_batches import BatchedYamnet, PatchJob, in_thread, score_jobs, split_batch
from tests.detection.tiny_model import make_artifact


@pytest.fixture(scope="module")
def yamnet():
    return load_yamnet()


@pytest.fixture(scope="module")
def scream_and_speech(real_v1):
    recs = scan(real_v1).recordings
    scream = next(r for r in recs if r.has_scream and 3.0 < sf.info(str(r.path)).duration < 8)
    speech = next(r for r in recs if r.subcategory.startswith("speech"))
    return scream.path, speech.path


@given(
    threshold=st.floats(0.05, 0.999),
    weight=st.floats(0.05, 0.95),
    network=st.floats(0.0, 1.0),
)
def test_below_the_gate_no_yamnet_score_reaches_the_threshold(threshold, weight, network):
    gate = gate_for(threshold, weight)
    if network < gate:
        assert fuse(network, 1.0, weight) < threshold + 1e-9


def test_cascade_fuses_flagged_windows_only():
    network = np.array([0.1, 0.6, 0.9], np.float32)
    second = np.array([0.9, 0.2, 0.8], np.float32)
    flagged = network >= 0.5
    out = cascade(network, second, flagged, 0.5)
    np.testing.assert_allclose(out, [0.05, 0.4, 0.85], atol=1e-6)


def test_a_score_is_held_only_while_the_incident_is_open_and_within_the_hold():
    ends = np.array([5.05, 5.9, 5.999, 6.0, 7.0])
    assert held(ends, True, 5.0, 1.0).tolist() == [True, True, True, False, False]
    assert not held(ends, False, 5.0, 1.0).any()  # no incident open: every window is heard
    assert not held(ends, True, None, 1.0).any()  # nothing heard yet
    assert not held(ends, True, 5.0, 0.0).any()  # no hold


def test_config_is_checked():
    with pytest.raises(ValueError, match="weight"):
        SecondStageConfig(weight=1.0)
    with pytest.raises(ValueError, match="unknown"):
        SecondStageConfig.from_dict({"weight": 0.5, "colour": 1})
    assert SecondStageConfig.from_dict({"weight": 0.3, "gate": 0.2}).gate == 0.2


def test_a_model_with_a_bad_second_stage_is_refused(tmp_path):
    model = make_artifact(tmp_path / "m", seed=1)
    config = json.loads((model / "config.json").read_text())
    config["second_stage"] = {"weight": 2}
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match="second_stage"):
        read_model_config(model)


def test_patches_are_centred_on_their_windows():
    starts = patch_starts(np.array([0.0, 1.0]), window_span_s=1.0, offset_s=0.5)
    centre = (starts + PATCH_SAMPLES / 2) / SAMPLE_RATE
    np.testing.assert_allclose(centre, [0.0, 1.0], atol=1 / SAMPLE_RATE)


def test_yamnet_hears_a_real_scream_and_not_speech(yamnet, scream_and_speech):
    stage = SecondStage(SecondStageConfig(), yamnet)
    scores = []
    for path in scream_and_speech:
        audio, rate = sf.read(str(path), dtype="float32")
        starts = np.arange(0.0, max(0.1, len(audio) / rate - 1.0), 0.5)
        scores.append(stage.scream_scores(audio, rate, starts, 1.0).max())
    assert scores[0] > 0.3 and scores[1] < 0.05, scores


def test_detect_rescores_flagged_windows_from_the_file(tmp_path, yamnet, scream_and_speech):
    model_dir = make_artifact(tmp_path / "m", seed=2)
    plain = load_model(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    config["second_stage"] = {"weight": 0.5, "gate": float(np.float32(0.0))}
    (model_dir / "config.json").write_text(json.dumps(config))
    fused_model = load_model(model_dir)
    path = scream_and_speech[0]
    base = detect_file(path, plain)
    fused = detect_file(path, fused_model)
    audio, rate = sf.read(str(path), dtype="float32")
    stage = SecondStage(SecondStageConfig(0.5, 0.0), yamnet)
    delay = resampler_delay_s(rate, plain.features.sample_rate)
    span = plain.features.window_span_s()
    second = stage.scream_scores(audio, rate, base.starts_s, span, offset_s=delay)
    np.testing.assert_allclose(fused.scores, 0.5 * base.scores + 0.5 * second, atol=1e-5)
    # A gate above every network score leaves YAMNet out: the network's half only.
    high = SecondStage(SecondStageConfig(0.5, 0.99), yamnet)
    scores = np.full(base.scores.shape, 0.5, np.float32)
    out = second_stage_scores(path, rate, scores, base.starts_s, span, high, 22_050)
    np.testing.assert_allclose(out, 0.25)


def _streamed_at_16k(path, seconds: float | None = None):
    """A recording streamed by a 16 kHz device in 200 ms frames: its 16 kHz audio, the
    ``DeviceStream`` and the columns of the windows it cut."""
    audio, rate = sf.read(str(path), dtype="float32")
    audio16 = resample(audio if audio.ndim == 1 else audio.mean(1), rate, 16_000)
    stream = DeviceStream(Hello("tok", 16_000, "pcm_s16le", 1, "t"), FeatureConfig(), 0.1)
    pcm = (np.clip(audio16, -1, 1) * 32767).astype("<i2")
    if seconds is not None:
        pcm = pcm[: int(seconds * 16_000)]
    windows = []
    for start in range(0, len(pcm), 3200):
        windows += stream.feed(pcm[start : start + 3200].tobytes())
    return audio16, stream, [c for c, _ in windows]


def test_live_second_opinion_hears_what_detect_hears(yamnet, scream_and_speech):
    """A 16 kHz device streams a real scream: the live rescoring of its windows (from the ring,
    at the model's rate) gives YAMNet's scores of the same windows read from the file."""
    audio16, stream, cols = _streamed_at_16k(scream_and_speech[0])
    stage = SecondStage(SecondStageConfig(0.5, 0.0), yamnet)
    opinion = SecondOpinion(stage, BatchedYamnet(in_thread(ThreadPoolExecutor(1))))
    live = asyncio.run(opinion.rescore(stream, cols, np.ones(len(cols), np.float32)))
    starts = np.array([stream.window_times(c)[0] for c in cols])
    delay = resampler_delay_s(16_000, stream.cfg.sample_rate)
    offline = stage.scream_scores(audio16, 16_000, starts, stream.cfg.window_span_s(), delay)
    np.testing.assert_allclose(live, 0.5 + 0.5 * offline, atol=0.03)
    assert opinion.rescored == len(cols) and offline.max() > 0.3


def test_an_open_incident_holds_yamnets_score_for_a_second(yamnet, scream_and_speech):
    """While the stream's incident is open, flagged windows ending within a second of the last
    heard one take its score, unheard; the next is heard again; without an open incident every
    flagged window is heard."""
    _, stream, cols = _streamed_at_16k(scream_and_speech[0], seconds=3.0)
    assert len(cols) >= 17
    stage = SecondStage(SecondStageConfig(0.5, 0.0), yamnet)
    batched = BatchedYamnet(in_thread(ThreadPoolExecutor(1)))

    async def run(opinion, incident_open):
        first = await opinion.rescore(stream, cols[:5], np.ones(5, np.float32))
        later = await opinion.rescore(
            stream, cols[5:17], np.ones(12, np.float32), incident_open=incident_open
        )
        return first, later

    holding = SecondOpinion(stage, batched)
    first, held = asyncio.run(run(holding, True))
    hearing = SecondOpinion(stage, batched)
    _, heard = asyncio.run(run(hearing, False))
    ends = np.array([stream.window_times(c)[1] for c in cols[4:17]])
    within = ends[1:] - ends[0] < 1.0 - 1e-9
    n = int(within.sum())
    assert 0 < n < 12 and within[:n].all()  # a stride of 0.093 s: ten windows in a second
    np.testing.assert_array_equal(held[:n], np.full(n, first[4], np.float32))
    np.testing.assert_allclose(held[n:], heard[n:], atol=1e-4)  # a second on: heard again
    assert holding.rescored == 5 + 12 - n and holding.held == n
    assert hearing.rescored == 17 and hearing.held == 0
    assert np.ptp(heard[:n]) > 0  # the held windows would have scored otherwise


def test_windows_whose_audio_left_the_ring_take_the_networks_score(yamnet, scream_and_speech):
    """Scores that come back later than the ring holds audio (an overloaded host): the flagged
    windows the ring no longer holds are decided by the network's score alone, unheard (YAMNet
    would hear silence); the windows still held are heard as ever."""
    _, stream, cols = _streamed_at_16k(scream_and_speech[0])
    silence = np.zeros(3200, "<i2").tobytes()  # 200 ms frames until the scream left the ring
    for _ in range(int(stream.ring.capacity / stream.cfg.sample_rate / 0.2) + 1):
        stream.feed(silence)
    stage = SecondStage(SecondStageConfig(0.5, 0.0), yamnet)
    opinion = SecondOpinion(stage, BatchedYamnet(in_thread(ThreadPoolExecutor(1))))
    probs = np.linspace(0.2, 0.9, len(cols)).astype(np.float32)
    late = asyncio.run(opinion.rescore(stream, cols, probs))
    np.testing.assert_allclose(late, probs)  # the network's own scores
    assert opinion.unheard == len(cols) and opinion.rescored == 0

    _, fresh, fresh_cols = _streamed_at_16k(scream_and_speech[0])
    heard = asyncio.run(opinion.rescore(fresh, fresh_cols, probs[: len(fresh_cols)]))
    assert opinion.rescored == len(fresh_cols) and opinion.unheard == len(cols)
    assert not np.allclose(heard, probs[: len(fresh_cols)])


def test_streams_requests_go_through_yamnet_together(yamnet, scream_and_speech):
    """Three streams ask at once: one batch hears them all, and each stream gets the scores of
    its own windows (those YAMNet gives each request alone)."""
    stage = SecondStage(SecondStageConfig(0.5, 0.0), yamnet)
    jobs = []
    for k, path in enumerate(scream_and_speech[:3]):
        audio, rate = sf.read(str(path), dtype="float32")
        audio = audio if audio.ndim == 1 else audio.mean(1)
        starts = np.arange(0.0, 1.0 + 0.1 * k, 0.1)
        jobs.append(PatchJob(yamnet, audio, rate, starts, 1.0, 0.0))
    batched = BatchedYamnet(in_thread(ThreadPoolExecutor(1)))

    async def ask_together():
        return await asyncio.gather(*(batched.scores(job) for job in jobs))

    together = asyncio.run(ask_together())
    assert batched.batches == 1 and batched.patches == sum(len(j.starts_s) for j in jobs)
    for job, scores in zip(jobs, together, strict=True):
        alone = stage.scream_scores(job.audio, job.rate, job.starts_s, job.span_s, job.offset_s)
        assert scores.shape == alone.shape
        np.testing.assert_allclose(scores, alone, atol=1e-5)


def test_a_big_batch_is_cut_into_parallel_runs_of_whole_jobs(yamnet, scream_and_speech):
    """Ten streams' requests of 3-7 windows each, with two runs allowed: two runs of about the
    same number of windows, no job cut, each stream given its own scores."""
    audio, rate = sf.read(str(scream_and_speech[0]), dtype="float32")
    audio = audio if audio.ndim == 1 else audio.mean(1)
    jobs = [
        PatchJob(yamnet, audio, rate, 0.1 * np.arange(3 + k % 5) + 0.05 * k, 1.0, 0.0)
        for k in range(10)
    ]
    parts = split_batch([(job, None) for job in jobs], parallel=2, chunk=16)
    sizes = [sum(len(job.starts_s) for job, _ in part) for part in parts]
    assert len(parts) == 2 and [job for part in parts for job, _ in part] == jobs
    assert abs(sizes[0] - sizes[1]) <= 7
    assert len(split_batch([(job, None) for job in jobs[:3]], parallel=2, chunk=16)) == 1
    assert len(split_batch([(job, None) for job in jobs], parallel=8, chunk=16)) == 3

    batched = BatchedYamnet(in_thread(ThreadPoolExecutor(2)), parallel=2)

    async def ask_together():
        return await asyncio.gather(*(batched.scores(job) for job in jobs))

    together = asyncio.run(ask_together())
    assert batched.batches == 1 and batched.runs == 2
    for job, scores in zip(jobs, together, strict=True):
        alone = score_jobs([job])[0]
        np.testing.assert_allclose(scores, alone, atol=1e-5)


def test_a_failed_batch_fails_every_waiting_stream_and_the_next_batch_runs(
    yamnet, scream_and_speech
):
    audio, rate = sf.read(str(scream_and_speech[0]), dtype="float32")
    audio = audio if audio.ndim == 1 else audio.mean(1)
    good = PatchJob(yamnet, audio, rate, np.array([0.0, 0.5]), 1.0, 0.0)
    broken = PatchJob(yamnet, audio[:, None, None], rate, np.array([0.0]), 1.0, 0.0)
    batched = BatchedYamnet(in_thread(ThreadPoolExecutor(1)))

    async def ask():
        first = await asyncio.gather(
            batched.scores(good), batched.scores(broken), return_exceptions=True
        )
        return first, await batched.scores(good)

    first, later = asyncio.run(ask())
    assert all(isinstance(r, Exception) for r in first)
    assert later.shape == (2,) and batched.runs == 1


def _synthetic_scored(rng):
    n_files, per_file = 40, 20
    truth = np.arange(n_files) < 10
    file_index = np.repeat(np.arange(n_files), per_file)
    network = rng.uniform(0, 0.6, file_index.size)
    second = rng.uniform(0, 0.3, file_index.size)
    for f in range(10):  # the screams: high in both, a few windows each
        w = np.flatnonzero(file_index == f)[5:9]
        network[w] = rng.uniform(0.95, 1.0, w.size)
        second[w] = rng.uniform(0.6, 1.0, w.size)
    return _scored(network, truth, file_index), second


def _scored(network, truth, file_index) -> Scored:
    """Network scores of windows of files named ``f<i>.flac``; scream files are ``truth``."""
    targets = np.where(truth[file_index], 1, 0)
    return Scored(
        scores=network,
        targets=targets,
        sublabels=np.where(targets == 1, -1, 2),
        file_index=file_index,
        file_truth=truth,
        file_names=[f"f{i}.flac" for i in range(truth.size)],
    )


def test_the_gate_chosen_keeps_the_decisions_of_the_full_fusion():
    scored, second = _synthetic_scored(np.random.default_rng(0))
    cfg = FeatureConfig()
    chosen = choose(scored, second, 0.5, cfg, 0.1)
    stage = SecondStageConfig.from_dict(chosen["second_stage"])
    assert stage.gate == pytest.approx(
        gate_for(min(chosen["threshold"], chosen["decision"]["on_threshold"]), 0.5)
    )
    full = fused_scored(scored, second, SecondStageConfig(0.5, 0.0)).scores
    cascaded = fused_scored(scored, second, stage).scores
    assert np.array_equal(full >= chosen["threshold"], cascaded >= chosen["threshold"])
    assert chosen["flagged_window_share"] < 1.0
    result = compare(scored, second, cfg, 0.1, (0.3, 0.5), gates=())
    assert result["best"] in ("fused 0.3", "fused 0.5")
    assert result["network"]["file"]["f1"] <= result[result["best"]]["file"]["f1"] + 1e-9


def test_a_yamnet_floor_keeps_the_choice_where_the_gate_is_above_it():
    scored, second = _synthetic_scored(np.random.default_rng(0))
    cfg = FeatureConfig()
    weights = (0.3, 0.5)
    full = compare(scored, second, cfg, 0.1, weights, gates=())
    gates = {k: full[k]["second_stage"]["gate"] for k in ("fused 0.3", "fused 0.5")}
    assert gates["fused 0.5"] < 0.3 < gates["fused 0.3"]

    def floored(floor):
        partial = np.where(scored.scores >= floor, second, 0.0)
        return compare(scored, partial, cfg, 0.1, weights, floor=floor, gates=())

    low = floored(min(gates.values()) / 2)
    assert "yamnet" not in low  # YAMNet alone is not measured on a part of the windows
    for key in gates:  # every gate well above the floor: the choice made with every window
        assert not low[key]["inexact"]
        assert low[key]["second_stage"] == full[key]["second_stage"]
        assert low[key]["decision"] == full[key]["decision"]
        assert low[key]["file"] == full[key]["file"]
    assert low["best"] == full["best"]
    # Above the gate of 0.5: that row is marked inexact and not chosen.
    high = floored(0.3)
    assert high["fused 0.5"]["inexact"] and not high["fused 0.3"]["inexact"]
    assert high["best"] == "fused 0.3"
    assert "inexact" in comparison_md(high)


def test_the_gate_is_raised_while_the_out_of_source_figures_stay_no_worse():
    """Negatives whose windows the network puts at 0.75 and YAMNet at 1 reach the fused
    threshold, which the screams' fused scores need low: raising the gate over 0.75 drops those
    false alerts and keeps every scream, until a gate above the screams' network scores (0.96
    and up) loses some, where it stops."""
    rng = np.random.default_rng(3)
    n_files, per_file = 40, 20
    truth = np.arange(n_files) < 10
    file_index = np.repeat(np.arange(n_files), per_file)
    network = rng.uniform(0, 0.5, file_index.size)
    second = rng.uniform(0, 0.2, file_index.size)
    for f in range(10):  # screams: the network sure, YAMNet lukewarm
        w = np.flatnonzero(file_index == f)[5:12]
        network[w] = rng.uniform(0.96, 1.0, w.size)
        second[w] = rng.uniform(0.4, 0.6, w.size)
    for f in range(10, 14):  # what YAMNet alone hears as screams
        w = np.flatnonzero(file_index == f)[5:12]
        network[w], second[w] = 0.75, 1.0
    scored = _scored(network, truth, file_index)
    cfg = FeatureConfig()
    exact = compare(scored, second, cfg, 0.1, (0.5,), gates=())["fused 0.5"]
    assert exact["second_stage"]["gate"] < 0.75 and exact["alerts"]["false_alerts"] > 0
    result = compare(scored, second, cfg, 0.1, (0.5,), gates=(0.8, 0.9, 0.98, 0.99))
    best = result["fused 0.5"]
    assert (
        best["second_stage"]["gate"] == 0.9 and best["exact_gate"] == exact["second_stage"]["gate"]
    )
    assert best["alerts"]["false_alerts"] == 0
    assert best["alerts"]["scream_files_alerted"] == exact["alerts"]["scream_files_alerted"]
    assert best["threshold"] == exact["threshold"] and best["decision"] == exact["decision"]
    assert best["flagged_window_share"] < exact["flagged_window_share"]
    # the sweep: the exact gate, 0.8, 0.9, then 0.98 (worse: screams lost) and no further
    assert [e["gate"] for e in best["gate_sweep"]][1:] == [0.8, 0.9, 0.98]
    assert best["gate_sweep"][-1]["scream_files_alerted"] < exact["alerts"]["scream_files_alerted"]
    assert "| **0.9000** |" in comparison_md(result)


def test_floored_yamnet_scores_are_reused_only_for_the_same_network_and_floor(tmp_path):
    from eyescream_site.management.commands.second_stage import network_digest, reuse_scores

    scored, second = _synthetic_scored(np.random.default_rng(1))
    partial = np.where(scored.scores >= 0.2, second, 0.0).astype(np.float32)
    path = tmp_path / "yamnet_window_scores.npz"
    np.savez_compressed(
        path,
        scores=partial,
        file_index=scored.file_index,
        floor=np.float64(0.2),
        network_sha256=np.str_(network_digest(scored.scores)),
    )
    assert np.array_equal(reuse_scores(path, scored, 0.2), partial)
    assert np.array_equal(reuse_scores(path, scored, 0.5), partial)  # a higher floor needs less
    assert reuse_scores(path, scored, 0.1) is None  # windows in 0.1-0.2 were never scored
    other = Scored(**{**scored.__dict__, "scores": scored.scores * 0.99})
    assert reuse_scores(path, other, 0.2) is None  # another network flagged other windows


def _with_second_stage(model_dir, weight, gate):
    config = json.loads((model_dir / "config.json").read_text())
    config["second_stage"] = {"weight": weight, "gate": gate}
    (model_dir / "config.json").write_text(json.dumps(config))


def test_evaluate_scores_what_the_second_stage_decides(tmp_path, real_v1):
    """``evaluate`` of a model with a second stage: YAMNet only above the gate, fused there."""
    from django.core.management import call_command

    def top_scores(model_dir, out):
        call_command(
            "evaluate", "--data", str(real_v1), "--model", str(model_dir), "--out", str(out),
            "--limit-files", "6", "--seed", "5", "--threads", "1", "--no-progress",
        )  # fmt: skip
        files = json.loads((out / "metrics.json").read_text())["files"]
        return {f["file"]: (f["scream"], f["max_score"]) for f in files}

    plain = make_artifact(tmp_path / "plain", seed=3)
    network = top_scores(plain, tmp_path / "e0")
    closed = make_artifact(tmp_path / "closed", seed=3)
    _with_second_stage(closed, 0.5, 0.999)  # the tiny model flags nothing: half its score
    for name, (_, top) in top_scores(closed, tmp_path / "e1").items():
        assert top == pytest.approx(0.5 * network[name][1], abs=1e-6)
    fused_model = make_artifact(tmp_path / "fused", seed=3)
    _with_second_stage(fused_model, 0.5, 0.0)  # every window heard by YAMNet
    fused = top_scores(fused_model, tmp_path / "e2")
    lifts = {name: top - 0.5 * network[name][1] for name, (_, top) in fused.items()}
    assert all(lift >= -1e-6 for lift in lifts.values())
    screams = [lift for name, lift in lifts.items() if fused[name][0]]
    others = [lift for name, lift in lifts.items() if not fused[name][0]]
    assert screams and others and min(screams) > max(others)


def test_a_more_sensitive_stream_lowers_its_gate():
    from live.second_opinion import shared_second_opinion

    config = {"weight": 0.3, "gate": 0.6}
    assert shared_second_opinion(None) is None
    assert shared_second_opinion(config).stage.config.gate == 0.6
    assert shared_second_opinion(config, on_threshold=0.9).stage.config.gate == 0.6
    lower = shared_second_opinion(config, on_threshold=0.5).stage.config
    assert lower.gate == pytest.approx(gate_for(0.5, 0.3)) and lower.weight == 0.3
    # A gate raised above the exact one (chosen for the model's on threshold 0.74) moves down
    # by as much as the exact gate moves, keeping its margin; a less sensitive stream keeps it.
    raised = {"weight": 0.3, "gate": 0.9}
    opinion = shared_second_opinion(raised, on_threshold=0.6, model_on_threshold=0.74)
    moved = gate_for(0.74, 0.3) - gate_for(0.6, 0.3)
    assert moved > 0.15 and opinion.stage.config.gate == pytest.approx(0.9 - moved)
    same = shared_second_opinion(raised, on_threshold=0.8, model_on_threshold=0.74)
    assert same.stage.config.gate == 0.9
