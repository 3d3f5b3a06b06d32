"""Training, offline detection and the live stream see the same windows of a real recording.

The seed's demo failed because its live features differed from its training features. Here a
real file goes through the three paths -- the training data path (``FeatureStore`` +
``file_windows``), offline ``detect_file``, and a live ``DeviceStream`` fed 16 kHz int16 frames
as a device sends them -- and the windows (and the model's scores of them) must agree.
"""

import numpy as np
import soundfile as sf
import torch

from detection.artifacts import load_model, save_artifact
from detection.dataset import FeatureStore, file_windows, scan
from detection.features import FeatureConfig, resample
from detection.inference import detect_file
from detection.networks import build_network
from devices.protocol import Hello
from live.stream_state import DeviceStream

SCREAM = "audio/screamdet-main/319258_ramston_woman-screaming-of-fear.flac"


def test_training_offline_and_live_windows_agree(real_v1, tmp_path):
    cfg = FeatureConfig()
    stride = cfg.stride_columns(0.1)
    torch.manual_seed(0)
    save_artifact(
        tmp_path / "m",
        build_network("A", cfg.n_mels, cfg.window_columns),
        {"architecture": "A", "features": cfg.to_dict(), "stride_s": 0.1, "threshold": 0.5},
    )
    model = load_model(tmp_path / "m")

    # 1. the training path
    recording = next(r for r in scan(real_v1).recordings if r.rel == SCREAM)
    store = FeatureStore(cfg, cache_dir=tmp_path / "cache")
    features = store.features(recording)
    starts, _, _ = file_windows(features, cfg, stride)
    width = cfg.window_columns
    training = np.stack([features.columns[:, s : s + width] for s in starts])

    # 2. offline detection of the file as stored
    offline = detect_file(real_v1 / SCREAM, model, stride_s=0.1, block_s=1.7)
    np.testing.assert_allclose(offline.scores, model.predict(training), atol=1e-5)

    # 3. a live device stream: the file at 22,050 Hz as float32 frames of 200 ms
    audio, rate = sf.read(real_v1 / SCREAM, dtype="float32")
    hello = Hello("t", rate, "pcm_f32le", 1, "test")
    live = DeviceStream(hello, cfg, stride_s=0.1, clock=lambda: 0.0)
    windows = []
    frame = int(0.2 * rate)
    for i in range(0, audio.shape[0], frame):
        windows.extend(live.feed(audio[i : i + frame].tobytes(), now=0.0))
    assert [s for s, _ in windows] == list(starts)
    live_windows = np.stack([w for _, w in windows])
    assert np.max(np.abs(live_windows - training)) <= 1e-5

    # a device at 16 kHz sends a resampled signal: the live path and the batch path must
    # still agree for that signal
    audio16 = resample(audio, rate, 16_000)
    pcm16 = np.clip(np.round(audio16 * 32767), -32768, 32767).astype("<i2")
    hello16 = Hello("t", 16_000, "pcm_s16le", 1, "test")
    live16 = DeviceStream(hello16, cfg, stride_s=0.1, clock=lambda: 0.0)
    got = []
    for i in range(0, pcm16.shape[0], 3200):
        got.extend(live16.feed(pcm16[i : i + 3200].tobytes(), now=0.0))
    sf.write(tmp_path / "as16k.wav", pcm16, 16_000, subtype="PCM_16")
    offline16 = detect_file(tmp_path / "as16k.wav", model, stride_s=0.1)
    np.testing.assert_allclose(
        model.predict(np.stack([w for _, w in got])), offline16.scores, atol=1e-5
    )
