"""``python manage.py yamnet_import [--tflite PATH] [--out DIR]``: ship YAMNet's weights.

Reads the TensorFlow Lite file (default ``../shared/models/yamnet/yamnet.tflite``) and writes
``weights.pt`` into ``--out`` (default ``detection/shipped/yamnet``): the int8 values and scales
exactly as the file holds them (``detection.yamnet_import``). Needs ``ai-edge-litert``.
"""

import hashlib
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from detection.yamnet_import import read_tflite
from detection.yamnet_weights import WEIGHTS_FILE, YAMNET_DIR, save_weights


def default_tflite() -> Path:
    return Path(settings.BASE_DIR).parent / "shared" / "models" / "yamnet" / "yamnet.tflite"


class Command(BaseCommand):
    help = "Convert YAMNet's TFLite weights into the shipped PyTorch weights file."

    def add_arguments(self, parser):
        parser.add_argument("--tflite", type=Path, default=None)
        parser.add_argument("--out", type=Path, default=YAMNET_DIR)

    def handle(self, *args, **options):
        source = options["tflite"] or default_tflite()
        if not source.is_file():
            raise CommandError(f"no TFLite file at {source}")
        weights = read_tflite(source)
        target = options["out"] / WEIGHTS_FILE
        save_weights(weights, target)
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        count = sum(values.size for values, _ in weights.values())
        self.stdout.write(
            f"{target}: {len(weights)} tensors, {count:,} values,"
            f" from {source} (sha256 {digest[:16]})"
        )
