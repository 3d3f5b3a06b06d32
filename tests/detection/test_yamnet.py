"""The PyTorch YAMNet against the TFLite file it was read from, on real recordings."""

from pathlib import Path

import librosa
import numpy as np
import pytest
import torch

from detection.dataset import scan
from detection.yamnet import (
    PATCH_SAMPLES,
    SAMPLE_RATE,
    SCREAMING,
    YAMNet,
    _same_padding,
    patches,
    quantise_rows,
    scream_scores,
)
from detection.yamnet_import import TFLiteYAMNet, read_tflite
from detection.yamnet_weights import YAMNET_DIR, load_yamnet, read_weights
from tests.conftest import DATASETS

TFLITE = DATASETS.parent / "models" / "yamnet" / "yamnet.tflite"


@pytest.fixture(scope="module")
def tflite_path(real_v1) -> Path:
    assert TFLITE.is_file(), f"YAMNet's TFLite file is missing at {TFLITE}"
    return TFLITE


@pytest.fixture(scope="module")
def port() -> YAMNet:
    """As the product runs it: float front end."""
    torch.set_num_threads(1)
    return load_yamnet()


@pytest.fixture(scope="module")
def port_as_tflite() -> YAMNet:
    """The spectrum rounded to int8 per frame, as the TFLite kernels do."""
    return load_yamnet(quantise_front_end=True)


@pytest.fixture(scope="module")
def real_patches(real_v1) -> tuple[np.ndarray, np.ndarray]:
    """Two patches from each of 30 recordings of every kind (screams, speech, animals...), and
    whether each is from a scream file."""
    recordings = scan(real_v1).recordings[::24]
    batch, screams = [], []
    for rec in recordings:
        audio, _ = librosa.load(rec.path, sr=SAMPLE_RATE, mono=True)
        starts = np.array([0, max(0, len(audio) // 2 - PATCH_SAMPLES // 2)])
        batch.append(patches(audio, starts))
        screams += [rec.has_scream] * 2
    return np.concatenate(batch), np.array(screams)


def test_shipped_weights_are_the_tflite_files_values(tflite_path):
    shipped = read_weights(YAMNET_DIR / "weights.pt")
    source = read_tflite(tflite_path)
    assert shipped.keys() == source.keys()
    for name, (values, scales) in source.items():
        assert np.array_equal(shipped[name][0], values), name
        if scales is None:
            assert shipped[name][1] is None
        else:
            assert np.array_equal(shipped[name][1], scales), name
    assert any(values.dtype == np.int8 for values, _ in shipped.values())


@pytest.fixture(scope="module")
def tflite_scores(tflite_path, real_patches):
    reference = TFLiteYAMNet(tflite_path)
    scores, embeddings = zip(*(reference(p) for p in real_patches[0]), strict=True)
    return np.array(scores), np.array(embeddings)


def test_port_scores_as_the_tflite_file_does_on_real_audio(
    port_as_tflite, real_patches, tflite_scores
):
    batch, screams = real_patches
    ref_scores, ref_embeddings = tflite_scores
    with torch.inference_mode():
        scores, embeddings = port_as_tflite(torch.from_numpy(batch))
    scores, embeddings = scores.numpy(), embeddings.numpy()

    assert batch.shape[0] >= 50 and screams.sum() >= 4
    # The TFLite kernels quantise each convolution's input to int8 at run time; the port keeps
    # float activations after the front end, so scores agree closely but not bit for bit.
    assert np.abs(scores[:, SCREAMING] - ref_scores[:, SCREAMING]).max() < 0.06
    assert np.corrcoef(scores.ravel(), ref_scores.ravel())[0, 1] > 0.995
    agree = np.mean(scores.argmax(1) == ref_scores.argmax(1))
    assert agree >= 0.9, f"top class agrees on {agree:.0%} of patches"
    cosine = np.sum(embeddings * ref_embeddings, 1) / (
        np.linalg.norm(embeddings, axis=1) * np.linalg.norm(ref_embeddings, axis=1)
    )
    # Near-silent patches differ most: int8 steps of a quiet input are coarse.
    assert np.mean(cosine > 0.99) >= 0.95 and cosine.min() > 0.7
    # The 'Screaming' score tells the scream files' patches from the others in both.
    for s in (scores[:, SCREAMING], ref_scores[:, SCREAMING]):
        assert np.median(s[screams]) > 10 * np.median(s[~screams])


def test_float_front_end_agrees_with_the_tflite_file(port, real_patches, tflite_scores):
    """The product's port (float spectrum) ranks as the TFLite file does: the same top class on
    most patches, the same scream patches on top."""
    batch, screams = real_patches
    ref_scores, _ = tflite_scores
    with torch.inference_mode():
        scores, _ = port(torch.from_numpy(batch))
    scores = scores.numpy()
    assert np.mean(scores.argmax(1) == ref_scores.argmax(1)) >= 0.8
    assert np.corrcoef(scores[:, SCREAMING], ref_scores[:, SCREAMING])[0, 1] > 0.9
    assert np.median(scores[screams, SCREAMING]) > 10 * np.median(scores[~screams, SCREAMING])


def test_scream_scores_batches_as_one_forward(port, real_patches):
    batch, _ = real_patches
    one = scream_scores(port, batch[:10], chunk=64)
    chunked = scream_scores(port, batch[:10], chunk=3)
    np.testing.assert_allclose(one, chunked, atol=1e-5)


def test_the_frozen_port_scores_as_the_port_at_any_batch_size(port, real_patches):
    """What the product scores with (``load_yamnet(for_scoring=True)``): traced and frozen at a
    batch of 16, it gives the port's scores for batches of 1, 5, 16 and 60 real patches."""
    batch, _ = real_patches
    scoring = load_yamnet(for_scoring=True)
    assert isinstance(scoring, torch.jit.ScriptModule)
    for size, chunk in ((1, 1), (5, 5), (16, 16), (len(batch), 64)):
        np.testing.assert_allclose(
            scream_scores(scoring, batch[:size], chunk=chunk),
            scream_scores(port, batch[:size], chunk=chunk),
            atol=1e-5,
        )
    with torch.inference_mode():
        embedding = scoring(torch.from_numpy(batch[:3]))[1]
        np.testing.assert_allclose(embedding, port(torch.from_numpy(batch[:3]))[1], atol=1e-5)


def test_quantise_rows_keeps_256_levels_between_each_rows_range():
    x = torch.tensor([[0.0, 0.5, 1.0, 0.25], [0.0, 100.0, 0.15, 0.3]])
    q = quantise_rows(x)
    assert torch.allclose(q[0], x[0], atol=1.0 / 255)
    assert q[1, 2] == 0.0  # below half a step of 100/255
    assert torch.isclose(q[1, 3], torch.tensor(100.0 / 255))
    assert torch.isclose(q[1, 1], torch.tensor(100.0), atol=0.2)


def test_same_padding_puts_the_extra_element_after():
    assert _same_padding(96, 3, 2) == (0, 1)
    assert _same_padding(64, 3, 1) == (1, 1)
    assert _same_padding(3, 3, 2) == (1, 1)


def test_patches_zero_fill_past_the_ends():
    audio = np.arange(1, 20_001, dtype=np.float32)
    out = patches(audio, np.array([0, 10_000, -5]))
    assert out.shape == (3, PATCH_SAMPLES)
    assert out[0, 0] == 1 and out[0, -1] == PATCH_SAMPLES
    assert out[1, 0] == 10_001 and out[1, 9_999] == 20_000 and not out[1, 10_000:].any()
    assert not out[2, :5].any() and out[2, 5] == 1


def test_front_end_rejects_wrong_patch_length(port):
    with pytest.raises(ValueError, match="15600"):
        port(torch.zeros(1, 16_000))
