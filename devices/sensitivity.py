"""How sensitive a site's or device's live decision is: a ``sensitivity`` (0..1, 0.5 = the model's
own operating point) and a ``decision`` dict of ``detection.decision.DecisionConfig`` fields
(e.g. ``{"min_duration_s": 0.3}``), both optional on the row.

They apply to the streams of that site or device on top of the active model version's decision
defaults (site first, then device; ``live.scoring_setup.decision_overrides``), from the stream's
next connection. ``python -m bench.operating_points`` prints, out of source, what a stricter
operating point costs in recall (docs/models.md, "Operating points").
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator

from detection.decision import DecisionConfig

SENSITIVITY_VALIDATORS = [MinValueValidator(0.0), MaxValueValidator(1.0)]
SENSITIVITY_HELP = (
    "0 (fewest alerts) to 1 (most); empty or 0.5 keeps the model's operating point. "
    "Applies from each stream's next connection."
)
DECISION_HELP = (
    'Decision parameters for these streams, e.g. {"min_duration_s": 0.3, "on_threshold": 0.75}; '
    "see docs/models.md. Applies from each stream's next connection."
)


def validate_decision(value) -> None:
    """A ``decision`` override must name ``DecisionConfig`` fields with values it accepts."""
    if value in (None, {}):
        return
    if not isinstance(value, dict):
        raise ValidationError(
            'give an object of decision parameters, such as {"min_duration_s": 0.3}'
        )
    if "sensitivity" in value:
        raise ValidationError("set the sensitivity in its own field, not in the decision")
    try:  # a decision of its own, as a model's config.json holds one
        DecisionConfig.from_model(dict(value), 0.5)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"not a valid decision: {exc}") from exc
