"""Reading OpenClonk C4Group archives (nested groups, packed or unpacked on disk), OpenSFX
sample catalogues and WavPack sounds, on files the tests make; the catalogue's rules."""

from __future__ import annotations

import io
import re
import shutil
import struct
import subprocess

import numpy as np
import pytest
import soundfile as sf

from detection.packs import convert
from detection.packs.c4group import (
    C4GroupError,
    group_entries,
    group_files,
    read_group,
    scramble,
    unpack_stream,
)
from detection.packs.catalogue import decide, select
from detection.packs.convert import DecodeError, decode
from detection.packs.extract import iter_members, member_licence, sample_cat_files

from .packs_fixtures import c4group_body, c4group_file

TREE = {
    "Animals.ocg": {"Bat.ocg": {"Chirp.wav": b"RIFF bat"}, "Buzz.ogg": b"OggS buzz"},
    "Clonk.ocg": {"Skin.ocg": {"Alchemist.ocg": {"Scream1.wav": b"RIFF scream" * 50}}},
    "Title.txt": b"sounds",
}
FILES = {
    "Animals.ocg/Bat.ocg/Chirp.wav": b"RIFF bat",
    "Animals.ocg/Buzz.ogg": b"OggS buzz",
    "Clonk.ocg/Skin.ocg/Alchemist.ocg/Scream1.wav": b"RIFF scream" * 50,
    "Title.txt": b"sounds",
}


def test_scramble_is_its_own_inverse_and_hides_the_id():
    header = b"RedWolf Design GrpFolder".ljust(204, b"\0")
    scrambled = scramble(header)
    assert b"RedWolf" not in scrambled
    assert scramble(scrambled) == header


def test_read_group_gives_nested_entries_with_their_paths():
    assert dict(read_group(c4group_file(TREE))) == FILES
    entries = group_entries(unpack_stream(c4group_file(TREE)))
    assert [path for path, _, _ in entries] == list(FILES)


def test_group_files_reads_a_group_unpacked_on_disk(tmp_path):
    folder = tmp_path / "Sound.ocg"
    for path, data in FILES.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    assert dict(group_files(folder)) == FILES
    (tmp_path / "Packed.ocg").write_bytes(c4group_file(TREE))
    assert dict(group_files(tmp_path / "Packed.ocg")) == FILES


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x1f\x8b plain gzip", "1e 8c"),
        (b"\x1e\x8c not deflate at all", "decompress"),
        (c4group_file({})[:2] + c4group_file({})[2:12], "decompress"),
    ],
)
def test_unreadable_streams_are_errors(data, message):
    with pytest.raises(C4GroupError, match=message):
        list(read_group(data))


def test_corrupt_groups_are_errors():
    body = bytearray(c4group_body(TREE))
    with pytest.raises(C4GroupError, match="header id"):
        group_entries(b"\0" * 204 + bytes(body[204:]))
    with pytest.raises(C4GroupError, match="runs past"):
        group_entries(bytes(body[:-10]))  # the last entry's data is cut short
    # An entry table longer than the group.
    header = scramble(bytes(body[:204]))
    header = header[:36] + struct.pack("<i", 10_000) + header[40:]
    with pytest.raises(C4GroupError, match="entry table"):
        group_entries(scramble(header) + bytes(body[204:]))


def test_iter_members_opens_groups_and_reports_a_corrupt_one(tmp_path):
    games = tmp_path / "usr/share/games/openclonk"
    games.mkdir(parents=True)
    (games / "Sound.ocg").write_bytes(c4group_file(TREE))
    (games / "Broken.ocg").write_bytes(c4group_file(TREE)[:200])
    (games / "Music.ocg").mkdir()
    (games / "Music.ocg/Theme.ogg").write_bytes(b"OggS theme")
    errors: list[str] = []
    members = {m.path: m for m in iter_members(tmp_path, (r".*\.ocg",), errors)}
    prefix = "usr/share/games/openclonk/"
    assert set(members) == {f"{prefix}Sound.ocg!{p}" for p in FILES} | {
        f"{prefix}Music.ocg/Theme.ogg"
    }
    scream = members[f"{prefix}Sound.ocg!Clonk.ocg/Skin.ocg/Alchemist.ocg/Scream1.wav"]
    assert scream.read() == b"RIFF scream" * 50 and scream.size == len(b"RIFF scream" * 50)
    assert len(errors) == 1 and errors[0].startswith(f"{prefix}Broken.ocg: not a readable C4Group")


def _sample_cat(samples: list[tuple[str, bytes]]) -> bytes:
    table, data = b"", b""
    start = 8 * len(samples)
    for text, body in samples:
        name = text.encode("latin-1") + b"\0"
        entry = bytes([len(name)]) + name + body
        table += struct.pack("<II", start + len(data), len(entry))
        data += entry
    return table + data


def test_sample_cat_files_names_samples_by_title_and_drops_empty_ones(tmp_path):
    cat = _sample_cat(
        [
            ('"Factory Whistle". By Someone. License: CC0.', b"RIFF whistle"),
            ('"Unused/Nothing". Trivial empty sound file.', b""),
            ('"Tropical: Bird (1)". License: CC-BY 3.0.', b"RIFF bird"),
        ]
    )
    assert dict(sample_cat_files(cat)) == {
        "00_factory_whistle.wav": b"RIFF whistle",
        "02_tropical_bird_1.wav": b"RIFF bird",
    }
    (tmp_path / "sfx.cat").write_bytes(cat)
    (tmp_path / "bad.cat").write_bytes(b"\xff\xff\xff\x7f" + b"\0" * 20)
    errors: list[str] = []
    paths = [m.path for m in iter_members(tmp_path, (r".*\.cat",), errors)]
    assert paths == ["sfx.cat!00_factory_whistle.wav", "sfx.cat!02_tropical_bird_1.wav"]
    assert len(errors) == 1 and errors[0].startswith("bad.cat: not a readable sample catalogue")


def _spec(pack: str, package: str):
    return next(s for s in select([pack])[0].packages if s.name == package)


OC = "usr/share/games/openclonk/Sound.ocg"
OSFX = "usr/share/games/openttd/baseset/opensfx/opensfx.cat!"
SCR = "usr/share/scratch/Media/Sounds/"
MGT = "usr/share/games/megaglest/tilesets/"
UFO = "usr/share/games/ufoai/base/0snd.pk3!sound/"
WMX = "usr/share/games/warmux/sound/default/voices/"
WWV = "usr/share/wordwarvi/sounds/"
TW = "usr/share/games/teeworlds/data/audio/"
S3D = "usr/share/games/scorched3d/data/globalmods/apoc/data/wav/misc/"
S3DB = "usr/share/games/scorched3d/data/globalmods/none/data/wav/misc/"


@pytest.mark.parametrize(
    ("pack", "package", "member", "expected"),
    [
        # OpenClonk's clonk voices: cries go to the scream screen, per voice; packed or not.
        ("vocal", "openclonk-data", f"{OC}!Clonk.ocg/Skin.ocg/Alchemist.ocg/Scream1.wav",
         ("1", "pain_death_cry", "Alchemist", True)),
        ("vocal", "openclonk-data", f"{OC}/Clonk.ocg/Skin.ocg/Farmer.ocg/Hurt2.ogg",
         ("1", "pain_death_cry", "Farmer", True)),
        ("vocal", "openclonk-data", f"{OC}!Clonk.ocg/Skin.ocg/Steampunk.ocg/Laughter2.wav",
         ("0_0", "laughing", "Steampunk", False)),
        ("vocal", "openclonk-data", f"{OC}!Clonk.ocg/Skin.ocg/Steampunk.ocg/Doubt1.wav", None),
        ("nonhuman", "openclonk-data", f"{OC}!Environment.ocg/BirdsLoop.ogg",
         ("0_1", "birdsong", "birds", False)),
        ("nonhuman", "openclonk-data", f"{OC}!Animals.ocg/Wipf.ocg/Whine.wav",
         ("0_1", "animal_call", "wipf", False)),
        ("nonhuman", "openclonk-data", f"{OC}!Animals.ocg/Mooq.ocg/Snort1.wav", None),
        ("nonhuman", "openttd-opensfx", f"{OSFX}03_factory_whistle.wav",
         ("0_1", "whistle", "03_factory_whistle", False)),
        ("nonhuman", "openttd-opensfx", f"{OSFX}14_level_crossing.wav",
         ("0_1", "alarm", "level_crossing", False)),
        ("nonhuman", "openttd-opensfx", f"{OSFX}72_tropical_bird_2.wav",
         ("0_1", "bird", "tropical_bird", False)),
        ("nonhuman", "openttd-opensfx", f"{OSFX}67_tropical_lion_roar.wav",
         ("0_2", "animal_low", "lion", False)),
        ("nonhuman", "openttd-opensfx", f"{OSFX}06_ship_horn.wav", None),
        ("vocal", "openttd-opensfx", f"{OSFX}29_applause.wav",
         ("0_0", "applause_cheering", "applause", False)),
        # Scratch's sound library and the freedesktop sound theme.
        ("vocal", "scratch", f"{SCR}Human/Scream-male2.mp3", ("1", "scream", "male", True)),
        ("vocal", "scratch", f"{SCR}Human/BabyCry.mp3", ("0_0", "crying", "baby", False)),
        ("vocal", "scratch", f"{SCR}Human/Sneeze-female.wav",
         ("0_2", "sneezing", "female", False)),
        ("nonhuman", "scratch", f"{SCR}Animal/Rooster.wav", ("0_1", "bird", "Rooster", False)),
        ("nonhuman", "scratch", f"{SCR}Animal/Kitten.wav", ("0_1", "animal_call", "cat", False)),
        ("nonhuman", "scratch", f"{SCR}Animal/Dog2.wav", ("0_2", "dog_bark", "dog", False)),
        ("nonhuman", "sound-theme-freedesktop",
         "usr/share/sounds/freedesktop/stereo/alarm-clock-elapsed.oga",
         ("0_1", "alarm", "alarm_clock", False)),
        ("nonhuman", "sound-theme-freedesktop",
         "usr/share/sounds/freedesktop/stereo/phone-outgoing-busy.oga", None),
        # MegaGlest's tileset ambiences: only the real files, not the other tilesets' links.
        ("nonhuman", "megaglest-data", f"{MGT}spring/sounds/day.ogg",
         ("0_1", "birdsong", "spring", False)),
        ("nonhuman", "megaglest-data", f"{MGT}birch_forest/sounds/night.ogg",
         ("0_1", "birdsong", "birch_forest", False)),
        ("nonhuman", "megaglest-data", f"{MGT}mediterran/sounds/desertday.ogg",
         ("0_1", "insect", "mediterran", False)),
        ("nonhuman", "megaglest-data", f"{MGT}desert2/sounds/hawk.ogg",
         ("0_1", "bird", "hawk", False)),
        ("nonhuman", "megaglest-data", f"{MGT}forest/sounds/day.ogg", None),
        ("nonhuman", "megaglest-data", f"{MGT}desert2/sounds/day.ogg", None),
        # UFO: Alien Invasion's soldiers and civilians, WarMUX, Wordwarvi, Battle Tanks, Cube 2.
        ("vocal", "ufoai-sound", f"{UFO}civilians/civfemscream02a.ogg",
         ("1", "pain_death_cry", "civilian_civfem", True)),
        ("vocal", "ufoai-sound", f"{UFO}civilians/maledeath03.ogg",
         ("1", "pain_death_cry", "civilian_male", True)),
        ("vocal", "ufoai-sound", f"{UFO}soldiers/femalehurt04.ogg",
         ("1", "pain_death_cry", "soldier_female", True)),
        ("vocal", "ufoai-sound", f"{UFO}aliens/ortnok/die1.ogg", None),
        ("vocal", "warmux-data", f"{WMX}injured_high5.ogg",
         ("1", "pain_cry_cartoon", "default", True)),
        ("vocal", "warmux-data", f"{WMX}superjump.ogg", ("0_0", "yell_grunt", "default", False)),
        ("vocal", "warmux-data", f"{WMX}theme3.ogg", None),
        ("vocal", "wordwarvi-sound", f"{WWV}fallingscreamhi.ogg",
         ("1", "pain_death_cry", "fallingscreamhi", True)),
        ("vocal", "wordwarvi-sound", f"{WWV}help_up_here.ogg",
         ("0_0", "shouting", "help", False)),
        ("vocal", "wordwarvi-sound", f"{WWV}hohoho_merry_xmas.ogg",
         ("0_0", "laughing", "hohoho", False)),
        ("vocal", "btanks-data", "usr/share/games/btanks/data/sounds/kamikaze-scream.ogg",
         ("1", "pain_death_cry", "kamikaze-scream", True)),
        ("vocal", "btanks-data", "usr/share/games/btanks/data/sounds/laugh02.ogg",
         ("0_0", "laughing", "crowd", False)),
        ("vocal", "cube2-data", "usr/share/games/cube2/packages/sounds/aard/die2.wav",
         ("1", "pain_death_cry", "aard", True)),
        ("vocal", "cube2-data", "usr/share/games/cube2/packages/sounds/0ad/death_11.ogg", None),
        ("vocal", "teeworlds-data", f"{TW}vo_teefault_pain_long-02.wv",
         ("1", "pain_cry_cartoon", "teefault", True)),
        ("vocal", "teeworlds-data", f"{TW}vo_teefault_spawn-07.wv",
         ("0_0", "shouting", "teefault", False)),
        ("vocal", "teeworlds-data", f"{TW}wp_hammer_swing-02.wv", None),
        ("vocal", "scorched3d-data",
         "usr/share/games/scorched3d/data/globalmods/apoc/data/wav/misc/scream3.wav",
         ("1", "scream", "scream3", True)),
        ("vocal", "scorched3d-data",
         "usr/share/games/scorched3d/data/globalmods/apoc/data/wav/misc/cheeringloop.wav",
         ("0_0", "applause_cheering", "crowd", False)),
        ("nonhuman", "scorched3d-data", f"{S3DB}gull4.wav", ("0_1", "bird", "gull", False)),
        ("nonhuman", "scorched3d-data", f"{S3DB}birdchirp2.wav",
         (None, "", "birdchirp2", False)),
        ("nonhuman", "scorched3d-data", f"{S3DB}frogs.wav",
         ("0_1", "animal_call", "frogs", False)),
        ("nonhuman", "scorched3d-data", f"{S3D}policecar.wav",
         ("0_1", "siren", "policecar", False)),
        ("nonhuman", "scorched3d-data", f"{S3D}moo.wav", ("0_2", "animal_low", "cow", False)),
        ("backgrounds", "scorched3d-data", f"{S3DB}thunder3.wav",
         ("0_2", "thunder", "thunder", False)),
        ("backgrounds", "scorched3d-data", f"{S3D}citysounds.wav",
         ("0_2", "traffic", "city", False)),
        ("vocal", "starfighter-data", "usr/share/starfighter/sound/maledeath.ogg",
         ("1", "pain_death_cry", "male", True)),
        ("vocal", "hannah-data", "usr/share/games/hannah/sounds/scream.wav",
         ("1", "scream", "hannah", True)),
    ],
)  # fmt: skip
def test_catalogue_rules_for_the_new_packages(pack, package, member, expected):
    decision = decide(_spec(pack, package), member)
    if expected is None:
        assert decision is None
    else:
        assert (decision.cls, decision.subcategory, decision.group, decision.screen) == expected


def test_openclonk_and_opensfx_read_their_archives_with_their_licences():
    oc = _spec("vocal", "openclonk-data")
    assert any(re.fullmatch(a, OC) for a in oc.archives)
    assert "CC0" in oc.license_note
    sfx = _spec("nonhuman", "openttd-opensfx")
    assert any(re.fullmatch(a, OSFX[:-1]) for a in sfx.archives)
    text = "Files: *\nLicense: GPL-2+ or CDDL\n\nFiles: src/wav/*\nLicense: CC-BY-SA-3.0\n"
    assert member_licence(text, f"{OSFX}03_factory_whistle.wav", sfx.license_stanza) == (
        "CC-BY-SA-3.0"
    )


def _sine_wav(seconds: float = 0.5, rate: int = 22_050) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(buffer, (0.5 * np.sin(2 * np.pi * 700 * t)).astype(np.float32), rate,
             format="WAV", subtype="PCM_16")  # fmt: skip
    return buffer.getvalue()


def test_wavpack_members_decode_through_wvunpack(tmp_path):
    # The Debian package wavpack (.ci/run installs it): the packs decode Teeworlds' sounds with it.
    assert shutil.which("wavpack") and shutil.which("wvunpack"), "apt-get install wavpack"
    source = tmp_path / "tone.wav"
    source.write_bytes(_sine_wav())
    subprocess.run(["wavpack", "-q", "-y", str(source), "-o", str(tmp_path / "tone.wv")],
                   check=True)  # fmt: skip
    packed = (tmp_path / "tone.wv").read_bytes()
    assert packed[:4] == b"wvpk"
    samples, rate = decode(packed, "tone.wv")
    expected, _ = decode(source.read_bytes(), "tone.wav")
    assert rate == 22_050
    np.testing.assert_array_equal(samples, expected)  # lossless
    with pytest.raises(DecodeError, match="cannot decode WavPack"):
        decode(packed[: len(packed) // 3], "cut.wv")


def test_wavpack_without_wvunpack_is_a_decode_error(monkeypatch):
    monkeypatch.setattr(convert.shutil, "which", lambda name: None)
    with pytest.raises(DecodeError, match="needs wvunpack"):
        decode(b"wvpk" + bytes(60), "x.wv")
