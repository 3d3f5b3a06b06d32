"""The live path, one module per step: frames in, windows, scores, decisions, alerts out.

``ingest`` (the device WebSocket consumer) -> ``stream_state`` (frames -> resampled audio ->
feature windows) -> ``scoring_client`` / ``scoring_batcher`` -> ``scoring_worker`` (batched
scoring in a worker; in-process in embedded mode) -> ``stream_scoring`` (level gate, decision,
incident -> alert opened, updated, closed; ``stream_clock`` dates it) -> ``alert_writes`` (the
alerts app's services, in threads or writer processes) -> the dashboards. ``health`` writes
device statistics in batches; ``scoring_messages`` is the one contract between consumer and
worker. This layer imports alerts, devices and detection; none of them imports it.
"""
