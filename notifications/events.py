"""The event types a destination can subscribe to, and the payload contract's version."""

PAYLOAD_VERSION = 1

ALERT_OPENED = "alert.opened"
ALERT_ENDED = "alert.ended"
ALERT_REVIEWED = "alert.reviewed"
ALERT_ESCALATED = "alert.escalated"
DEVICE_OFFLINE = "device.offline"
DEVICE_ONLINE = "device.online"

EVENT_TYPES = [
    (ALERT_OPENED, "alert opened"),
    (ALERT_ENDED, "alert ended"),
    (ALERT_REVIEWED, "alert reviewed"),
    (ALERT_ESCALATED, "alert unreviewed too long (escalation)"),
    (DEVICE_OFFLINE, "device offline"),
    (DEVICE_ONLINE, "device online"),
]
EVENT_NAMES = [name for name, _ in EVENT_TYPES]
ALERT_EVENTS = (ALERT_OPENED, ALERT_ENDED, ALERT_REVIEWED, ALERT_ESCALATED)
DEVICE_EVENTS = (DEVICE_OFFLINE, DEVICE_ONLINE)
