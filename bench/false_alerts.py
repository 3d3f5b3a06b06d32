"""False alerts per hour on many distinct compositions: ``python -m bench.false_alerts``.

The live benchmark streams N devices but only N compositions of 30 s (about 0.2 h of distinct
non-scream audio at N = 24): too little to tell 0 false alerts an hour from 3. This one runs
the live path offline, on many more compositions of the same kind (real non-scream recordings
of the pack with one real scream each, as 16 kHz pcm_s16le in 200 ms frames): every frame
through ``DeviceStream`` (validation, resampling, features, windows), the level gate, the model
and ``IncidentTracker``, exactly what ``bench.live_streams`` uses to predict the live alerts
(which it checks the live ones against). Prints the false alerts per hour of non-scream audio
and the screams alerted, at the model's own decision settings and at other on-thresholds, and
what was playing when each false alert opened (kind of sound, recording, closeness to a join).

The hours repeat a pool of a few hundred recordings (``distinct_non_scream_audio_minutes``), so
a single recording that the model takes for a scream shows up every time it is drawn: read the
breakdown before reading the rate. ``--fade-ms`` fades every recording in and out, to tell a
click at a hard cut from a sound the model hears as a scream.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

THRESHOLDS = (0.95, 0.98, 0.99, 0.995, 0.998, 0.999)


NEAR_JOIN_S = 1.0  # a false alert whose window ends this close to a join "is at a join"


def false_openings(variants, decision, span_s: float, scores) -> tuple[list[tuple], int]:
    """The false openings ``(variant, t_end)`` and the screams with an opening, for one
    decision setting. Openings in a scream recording's unlabelled stretches count as neither
    (``Variant.kind_at``)."""
    from detection.decision import OPENED, IncidentTracker

    false, screams = [], 0
    for variant, (times, probs) in zip(variants, scores, strict=True):
        tracker = IncidentTracker(decision, window_span_s=span_s)
        found = False
        for t_end, prob in zip(times, probs, strict=True):
            for event in tracker.update(t_end, float(prob)):
                if event.kind == OPENED:
                    kind = variant.kind_at(t_end)
                    found |= kind == "scream"
                    if kind == "false":
                        false.append((variant, t_end))
        screams += found
    return false, screams


def what_was_playing(false: list[tuple]) -> dict:
    """Where false alerts came from: the kind of recording playing at the end of the window
    that opened each, and how many opened within ``NEAR_JOIN_S`` of a join between two
    recordings (a hard cut that real microphones do not hear)."""
    kinds: dict[str, int] = {}
    files: dict[str, int] = {}
    near_join = 0
    for variant, t_end in false:
        row, to_join = variant.piece_at(t_end)
        kinds[row["subcategory"]] = kinds.get(row["subcategory"], 0) + 1
        files[row["path"]] = files.get(row["path"], 0) + 1
        near_join += to_join <= NEAR_JOIN_S
    top = sorted(files.items(), key=lambda item: -item[1])[:10]
    return {
        "by_kind": dict(sorted(kinds.items(), key=lambda item: -item[1])),
        f"within_{NEAR_JOIN_S:g}_s_of_a_join": near_join,
        "most_frequent_files": dict(top),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.false_alerts", description=__doc__)
    parser.add_argument("--sets", type=int, default=40, help="sets of 24 compositions")
    parser.add_argument("--seconds", type=float, default=30.0, help="audio per composition")
    parser.add_argument(
        "--fade-ms",
        type=float,
        default=0.0,
        help="fade every recording in and out over this time (0: hard cuts between them)",
    )
    parser.add_argument(
        "--backgrounds",
        metavar="PACKS",
        help="take the non-scream audio from these packs (their manifest.csv, e.g. var/packs):"
        " collections the model never heard; default real-v1's backgrounds",
    )
    parser.add_argument(
        "--model",
        default=os.environ.get(
            "EYESCREAM_MODEL_DIR", str(REPO / "detection" / "shipped" / "default")
        ),
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eyescream_site.settings")
    import django

    django.setup()
    import torch

    from bench.live_streams import (
        evidence_after_s,
        held_out_backgrounds,
        make_variants,
        offline_scores,
    )
    from detection.artifacts import load_model
    from detection.progress import tqdm
    from detection.scoring import decision_defaults

    torch.set_num_threads(2)
    model = load_model(args.model)
    cfg = model.features
    decision = decision_defaults(model.config)
    variants, scores = [], []
    after_s = evidence_after_s(decision, cfg, model.stride_s)
    pool = held_out_backgrounds(Path(args.backgrounds)) if args.backgrounds else None
    for seed in tqdm(range(args.sets), desc="compositions", unit="set of 24"):
        for variant in make_variants(
            24, args.seconds, seed=seed, fade_s=args.fade_ms / 1000, backgrounds=pool
        ):
            variant.after_s = after_s
            ends, _, probs = offline_scores(variant, model, decision)
            variants.append(variant)
            scores.append((ends, probs))
    hours = sum(v.non_scream_seconds() for v in variants) / 3600
    with_scream = sum(1 for v in variants if v.scream_seconds() > 0)

    def row(false: list, screams: int) -> dict:
        return {
            "false_alerts": len(false),
            "false_alerts_per_hour": round(len(false) / hours, 2),
            "screams_alerted": f"{screams} of {with_scream}",
        }

    span_s = cfg.window_span_s()
    sweep = {
        str(on): row(*false_openings(variants, decision.with_on_threshold(on), span_s, scores))
        for on in THRESHOLDS
    }
    own_false, own_screams = false_openings(variants, decision, span_s, scores)
    screams_used = {variant.name for variant in variants}
    used = {
        piece["path"]: float(piece["duration_s"])
        for v in variants
        for _, piece in v.pieces
        if piece["path"] not in screams_used
    }
    result = {
        "model": str(args.model),
        "backgrounds": args.backgrounds or "real-v1",
        "compositions": len(variants),
        # The hours above repeat a smaller pool: the recordings they are cut from.
        "distinct_non_scream_recordings": len(used),
        # An opening up to this long after a scream's labelled end is the scream's alert.
        "scream_evidence_after_s": round(after_s, 2),
        "distinct_non_scream_audio_minutes": round(sum(used.values()) / 60, 1),
        "fade_ms": args.fade_ms,
        "non_scream_audio_hours": round(hours, 2),
        "own_decision": {
            "on_threshold": round(decision.on_threshold, 4),
            **row(own_false, own_screams),
        },
        "other_on_thresholds": sweep,
        "false_alerts_at_own_decision": what_was_playing(own_false),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
