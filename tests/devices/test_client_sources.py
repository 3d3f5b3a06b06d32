"""The reference client's file source sends only rates the protocol accepts."""

import numpy as np
import pytest
import soundfile as sf

from devices.client.sources import load_file
from devices.protocol import SAMPLE_RATES


@pytest.mark.parametrize("rate, sent", [(8_009, 11_025), (16_000, 16_000), (96_000, 48_000)])
def test_a_file_at_any_rate_is_sent_at_an_accepted_rate(tmp_path, rate, sent):
    path = tmp_path / "tone.wav"
    sf.write(path, 0.5 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate), rate)
    audio, out_rate = load_file(str(path))
    assert out_rate == sent and out_rate in SAMPLE_RATES
    assert audio.shape == (sent, 1)  # one second, whatever the rate
