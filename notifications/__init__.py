"""Alerts and device events delivered outside the browser: per-site webhooks, e-mail, MQTT."""
