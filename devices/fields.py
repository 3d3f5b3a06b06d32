"""Model fields for numbers that come from devices."""

from __future__ import annotations

import math

from django.db import models


def finite_or_none(value):
    """``value`` as a float, or ``None`` when it is missing, NaN or infinite."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class FiniteFloatField(models.FloatField):
    """A nullable float that is never NaN or infinite, in the database or out of it.

    A device's audio decides some stored numbers (its level); one non-finite value would break
    every JSON answer that shows it (JSON has no Infinity) and so every operator's map. Such a
    value is stored as NULL, and one already stored reads back as ``None``.
    """

    def get_prep_value(self, value):
        return finite_or_none(super().get_prep_value(value))

    def from_db_value(self, value, expression, connection):
        return finite_or_none(value)
