"""Prometheus metrics of the live path (``/metrics``, docs/operations.md#metrics).

Counted where they happen: frames in ``live.ingest``, scoring round trips and inline scoring in
``live.scoring_client``, forwards (batch size, time) through ``Scorer.on_forward`` in whichever
process runs the network (daphne in embedded mode, ``runworker detection-score`` in scaled
mode), detection latency in ``live.stream_scoring``, YAMNet's patches where they are heard
(``live.yamnet_batches``). With ``PROMETHEUS_MULTIPROC_DIR`` set (the
scaled mode's Procfile sets it) every process of the host writes its values there and any
daphne's ``/metrics`` adds them up; without it each process counts for itself.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

FRAMES_ACCEPTED = Counter(
    "eyescream_frames_accepted", "Audio frames accepted from devices (counted once a second)"
)
FRAMES_REJECTED = Counter(
    "eyescream_frames_rejected", "Audio frames rejected, by protocol error", ["reason"]
)
STREAMS_STARTED = Counter("eyescream_streams_started", "Device streams that passed their hello")
WINDOWS_SCORED = Counter("eyescream_windows_scored", "Windows through the network")
WINDOWS_BY_VERSION = Counter(
    "eyescream_windows_by_model_version",
    "Windows whose scores streams received, by the registered model version that scored them"
    ' ("": an unregistered model)',
    ["version"],
)
BATCH_WINDOWS = Histogram(
    "eyescream_scoring_batch_windows",
    "Windows per network forward",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
FORWARD_SECONDS = Histogram(
    "eyescream_scoring_forward_seconds",
    "Time of one network forward",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
SCORING_SECONDS = Histogram(
    "eyescream_scoring_round_trip_seconds",
    "From a stream's windows submitted to their scores delivered (queue, batch, worker)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
SCORED_INLINE = Counter(
    "eyescream_scoring_inline", "Requests daphne scored itself because no worker answered"
)
SCORING_FAILED = Counter("eyescream_scoring_failed", "Requests that could not be scored at all")
YAMNET_PATCHES = Counter(
    "eyescream_yamnet_patches",
    "Windows YAMNet heard (the second stage), by the kind of process that ran it: ingest "
    "(daphne; in scaled mode only when no worker answered) or worker",
    ["process"],
)
YAMNET_INLINE = Counter(
    "eyescream_yamnet_inline",
    "Second-stage requests daphne scored itself because no worker answered (scaled mode)",
)
YAMNET_UNHEARD = Counter(
    "eyescream_yamnet_unheard",
    "Flagged windows whose audio had left the stream's ring before YAMNet could hear them "
    "(scores seconds late); the network's own score decided them",
)
DETECTION_SECONDS = Histogram(
    "eyescream_detection_latency_seconds",
    "From the end of the window that opened an incident (capture clock) to its alert stored",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0),
)


def observe_forward(windows: int, seconds: float) -> None:
    WINDOWS_SCORED.inc(windows)
    BATCH_WINDOWS.observe(windows)
    FORWARD_SECONDS.observe(seconds)


def observe_scorer(scorer) -> None:
    """Count the forwards of ``scorer`` (a ``detection.scoring.Scorer``)."""
    scorer.on_forward = observe_forward
