"""The scream screen and the pure helpers of the pack modules."""

from __future__ import annotations

import numpy as np
import pytest

from detection.packs.catalogue import PACKS, decide, select
from detection.packs.convert import to_pcm16, trim_silence
from detection.packs.extract import licence_from_text, member_licence, parse_copyright
from detection.packs.screen import THRESHOLDS, longest_run, screen

from .packs_fixtures import RATE, harmonic


def test_a_long_high_harmonic_cry_passes():
    result = screen(harmonic(700, 900, 1.5), RATE)
    assert result.passed, result.reason
    assert 650 < result.median_f0_hz < 950
    assert result.harmonicity > THRESHOLDS.min_harmonicity
    assert result.run_s > 1.0


@pytest.mark.parametrize(
    "samples, why",
    [
        (harmonic(120, 110, 1.5), "high harmonic run"),  # a low grunt
        (harmonic(800, 800, 0.2), "high harmonic run"),  # a short yelp
        (0.3 * np.random.default_rng(1).standard_normal(RATE).astype(np.float32), "run"),
        (0.005 * harmonic(700, 900, 1.5), "quiet"),  # far below the loudness floor
    ],
)
def test_grunts_yelps_noise_and_faint_cries_fail(samples, why):
    result = screen(samples, RATE)
    assert not result.passed
    assert why in result.reason


def test_longest_run_bridges_short_gaps():
    mask = np.array([1, 1, 0, 1, 1, 1, 0, 0, 0, 1], dtype=bool)
    assert longest_run(mask) == (3, 6)
    assert longest_run(mask, max_gap=1) == (0, 6)
    assert longest_run(np.zeros(4, dtype=bool)) == (0, 0)


def test_trim_silence_keeps_the_sound():
    tone = harmonic(500, 500, 0.5, 22_050)
    padded = np.concatenate([np.zeros(22_050, np.float32), tone, np.zeros(11_025, np.float32)])
    trimmed = trim_silence(padded, 22_050)
    assert abs(len(trimmed) - len(tone)) < 22_050 * 0.03
    assert to_pcm16(np.array([2.0, -2.0, 0.5])).tolist() == [32767, -32768, 16384]


COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
License: GPL-2

Files: share/hedgewars/Data/Sounds/*
License: GFDL-1.3

Files: share/hedgewars/Data/Sounds/Droplet*.ogg
License: CC-BY-SA-3.0

Files: hedgewars/*
License: GPL-2

Files: ru-*
License: CC-BY-3.0

Files: debian/*
License: GPL-2+
"""


def test_member_licence_follows_the_most_specific_files_stanza():
    licences = [s.license for s in parse_copyright(COPYRIGHT)]
    assert licences == ["GPL-2", "GFDL-1.3", "CC-BY-SA-3.0", "GPL-2", "CC-BY-3.0"]
    sounds = "usr/share/games/hedgewars/Data/Sounds"
    assert member_licence(COPYRIGHT, f"{sounds}/voices/Default/Ow1.ogg") == "GFDL-1.3"
    assert member_licence(COPYRIGHT, f"{sounds}/Droplet1.ogg") == "CC-BY-SA-3.0"
    assert member_licence(COPYRIGHT, "usr/share/games/hedgewars/Data/Maps/x.png") == "GPL-2"
    ru = "usr/share/asterisk/sounds/ru_RU_f_IvrvoiceRU/activated.wav"
    assert member_licence(COPYRIGHT, ru) == "GPL-2"
    assert member_licence(COPYRIGHT, ru, stanza="ru-*") == "CC-BY-3.0"


def test_free_form_copyright_texts_are_summarised():
    text = (
        "These files are distributed under the Creative Commons Attribution-ShareAlike\n"
        "3.0 license. The packaging is under the GNU General Public License, either\n"
        "version 2 of the License, or (at your option) any later version."
    )
    assert licence_from_text(text) == "CC-BY-SA-3.0"
    assert licence_from_text("see /usr/share/common-licenses/GPL-2") == "GPL-2"
    assert licence_from_text("no licence named") == ""


def test_catalogue_decisions():
    vocal = select(["vocal"])[0]
    openarena_088 = next(s for s in vocal.packages if s.name == "openarena-088-data")
    d = decide(
        openarena_088,
        "usr/share/games/openarena/baseoa/pak6-patch088.pk3!sound/player/neko/death1.ogg",
    )
    assert (d.cls, d.screen, d.group, openarena_088.group_family) == (
        "1",
        True,
        "ayumi",
        "openarena",
    )
    speech = select(["speech"])[0]
    tux = next(s for s in speech.packages if s.name == "tuxpaint-stamps-default")
    d = decide(tux, "usr/share/tuxpaint/stamps/animals/birds/crow_desc_fr.ogg")
    assert (d.cls, d.subcategory) == ("0_2", "speech_fr")
    assert decide(tux, "usr/share/tuxpaint/stamps/animals/birds/crow.ogg") is None
    with pytest.raises(ValueError, match="unknown pack"):
        select(["nope"])
    assert len({p.name for p in PACKS}) == len(PACKS)
