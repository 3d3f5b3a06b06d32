"""``python manage.py model_info [--markdown]``: size, cost and speed of every architecture."""

import torch
from django.core.management.base import BaseCommand

from detection.features import FeatureConfig
from detection.networks import (
    ARCHITECTURES,
    build_network,
    count_flops,
    count_parameters,
    windows_per_second,
)

COLUMNS = (
    "architecture",
    "parameters",
    "weights (MB)",
    "FLOPs / window",
    "input",
    "windows/s (1 thread)",
    "1 h at 0.1 s stride (s)",
)


def architecture_rows(cfg: FeatureConfig, windows: int, batch_size: int) -> list[tuple[str, ...]]:
    """One row of ``COLUMNS`` per architecture, for windows of ``cfg``."""
    n_mels, n_frames = cfg.n_mels, cfg.window_columns
    hour_windows = round(3600 / 0.1)
    rows = []
    for name in ARCHITECTURES:
        torch.manual_seed(0)
        net = build_network(name, n_mels, n_frames)
        params = count_parameters(net)
        speed = windows_per_second(net, n_mels, n_frames, windows, batch_size)
        rows.append(
            (
                name,
                f"{params:,}",
                f"{params * 4 / 1e6:.2f}",
                f"{count_flops(net, n_mels, n_frames) / 1e6:.2f}M",
                f"1x{n_mels}x{n_frames}",
                f"{speed:,.0f}",
                f"{hour_windows / speed:.1f}",
            )
        )
    return rows


def render(rows: list[tuple[str, ...]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


class Command(BaseCommand):
    help = (
        "Print parameters, FLOPs per 1-s window, input shape and single-thread scoring speed "
        "of every network architecture at the default feature settings. Needs no database."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
        parser.add_argument(
            "--windows", type=int, default=4096, help="windows to time per architecture"
        )
        parser.add_argument("--batch", type=int, default=512, help="windows per forward pass")

    def handle(self, *args, **options):
        torch.set_num_threads(1)
        cfg = FeatureConfig()
        rows = architecture_rows(cfg, max(1, options["windows"]), max(1, options["batch"]))
        self.stdout.write(render(rows, options["markdown"]))
        self.stdout.write(
            f"\nfeatures: {cfg.n_mels} mels x {cfg.window_columns} columns"
            f" (n_fft {cfg.n_fft}, hop {cfg.hop_length}, {cfg.sample_rate} Hz, {cfg.window_s} s);"
            f" FLOPs = 2 x multiply-accumulates of conv/linear/recurrent layers;"
            f" speed: batches of {options['batch']}, torch.inference_mode, 1 thread"
        )
