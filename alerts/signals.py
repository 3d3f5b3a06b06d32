"""Signals of the alerts app."""

from django.dispatch import Signal

# Sent after an alert's row is committed and broadcast, with ``event_type`` (``alert.created``
# or ``alert.updated``), ``alert`` and ``render`` (whether its picture must be drawn again).
alert_stored = Signal()

# Sent after an operator's review of ``alert`` is committed and broadcast.
alert_reviewed = Signal()
