"""False alerts per hour on many distinct compositions: ``python -m bench.false_alerts``.

The live benchmark streams N devices but only N compositions of 30 s (about 0.2 h of distinct
non-scream audio at N = 24): too little to tell 0 false alerts an hour from 3. This one runs
the live path offline, on many more compositions of the same kind (real non-scream recordings
of the pack with one real scream each, as 16 kHz pcm_s16le in 200 ms frames): every frame
through ``DeviceStream`` (validation, resampling, features, windows), the level gate, the model
and ``IncidentTracker``, exactly what ``bench.live_streams`` uses to predict the live alerts
(which it checks the live ones against). Prints the false alerts per hour of non-scream audio
and the screams alerted, at the model's own decision settings and at other on-thresholds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

THRESHOLDS = (0.95, 0.98, 0.99, 0.995, 0.998, 0.999)


def count(variants, decision, span_s: float, scores) -> tuple[int, int]:
    """False openings and screams with an opening, for one decision setting."""
    from detection.decision import OPENED, IncidentTracker

    false_alerts = screams = 0
    for variant, (times, probs) in zip(variants, scores, strict=True):
        tracker = IncidentTracker(decision, window_span_s=span_s)
        found = False
        for t_end, prob in zip(times, probs, strict=True):
            for event in tracker.update(t_end, float(prob)):
                if event.kind == OPENED:
                    if variant.in_scream(t_end):
                        found = True
                    else:
                        false_alerts += 1
        screams += found
    return false_alerts, screams


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.false_alerts", description=__doc__)
    parser.add_argument("--sets", type=int, default=40, help="sets of 24 compositions")
    parser.add_argument("--seconds", type=float, default=30.0, help="audio per composition")
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

    from bench.live_streams import make_variants, offline_scores
    from detection.artifacts import load_model
    from detection.scoring import decision_defaults
    from detection.training import tqdm

    torch.set_num_threads(2)
    model = load_model(args.model)
    cfg = model.features
    decision = decision_defaults(model.config)
    variants, scores = [], []
    for seed in tqdm(range(args.sets), desc="compositions", unit="set of 24"):
        for variant in make_variants(24, args.seconds, seed=seed):
            ends, _, probs = offline_scores(variant, model, decision)
            variants.append(variant)
            scores.append((ends, probs))
    hours = sum(v.seconds - v.scream_seconds() for v in variants) / 3600
    with_scream = sum(1 for v in variants if v.scream_seconds() > 0)

    def row(decision_cfg) -> dict:
        false_alerts, screams = count(variants, decision_cfg, cfg.window_span_s(), scores)
        return {
            "false_alerts": false_alerts,
            "false_alerts_per_hour": round(false_alerts / hours, 2),
            "screams_alerted": f"{screams} of {with_scream}",
        }

    sweep = {}
    for on in THRESHOLDS:
        sweep[str(on)] = row(
            replace(decision, on_threshold=on, off_threshold=min(decision.off_threshold, on))
        )
    result = {
        "model": str(args.model),
        "compositions": len(variants),
        "non_scream_audio_hours": round(hours, 2),
        "own_decision": {"on_threshold": round(decision.on_threshold, 4), **row(decision)},
        "other_on_thresholds": sweep,
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
