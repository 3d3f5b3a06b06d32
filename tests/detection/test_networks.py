"""Network architectures: shapes, sizes, gradients, FLOP counting, the registry."""

import pytest
import torch

from detection.features import FeatureConfig
from detection.networks import (
    ARCHITECTURES,
    build_network,
    count_flops,
    count_parameters,
)

CFG = FeatureConfig()
N_MELS, N_FRAMES = CFG.n_mels, CFG.window_columns

# (min, max) trainable parameters at the default input: the seed's sizes, loosely.
PARAM_RANGES = {
    "A": (100_000, 250_000),
    "A_Depthwise": (30_000, 200_000),
    "B": (300_000, 800_000),
    "C": (250_000, 700_000),
    "CRNN": (50_000, 500_000),
}


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(previous)


def test_registry_has_the_seed_architectures():
    assert set(ARCHITECTURES) == set(PARAM_RANGES)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("n_mels,n_frames", [(N_MELS, N_FRAMES), (16, 6), (40, 11), (128, 87)])
def test_forward_gives_one_logit_per_window(arch, n_mels, n_frames):
    net = build_network(arch, n_mels, n_frames)
    x = torch.randn(3, n_mels, n_frames) * 10 - 40  # raw dB-like values
    net.train()
    logits = net(x)
    assert logits.shape == (3,)
    assert torch.isfinite(logits).all()
    net.eval()
    with torch.inference_mode():
        single = net(x[:1])
    assert single.shape == (1,)
    # batch composition does not change a window's score in eval mode
    with torch.inference_mode():
        assert torch.allclose(net(x)[:1], single, atol=1e-5)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_parameter_count_is_real_and_in_range(arch):
    net = build_network(arch, N_MELS, N_FRAMES)
    manual = sum(p.numel() for p in net.parameters())
    assert count_parameters(net) == manual
    low, high = PARAM_RANGES[arch]
    assert low <= manual <= high, f"{arch}: {manual} parameters"


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_gradients_reach_every_parameter(arch):
    net = build_network(arch, N_MELS, N_FRAMES, dropout=0.0)
    x = torch.randn(4, N_MELS, N_FRAMES) * 10 - 40
    target = torch.tensor([1.0, 0.0, 1.0, 0.0])
    loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), target)
    loss.backward()
    for name, param in net.named_parameters():
        assert param.grad is not None, f"{arch}.{name} got no gradient"
        assert torch.isfinite(param.grad).all(), name
    assert any(p.grad.abs().sum() > 0 for p in net.parameters())


def test_a_learns_to_separate_a_tone_from_noise():
    """A few optimiser steps on an easy task lower the loss: the net can actually learn."""
    net = build_network("A", N_MELS, N_FRAMES, dropout=0.0)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(32, N_MELS, N_FRAMES, generator=gen)
    y = (torch.arange(32) % 2).float()
    x[y == 1, 40:44, :] += 4.0  # a band that only positives have
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_flops_follow_the_layers():
    flops = {
        a: count_flops(build_network(a, N_MELS, N_FRAMES), N_MELS, N_FRAMES) for a in ARCHITECTURES
    }
    assert flops["A_Depthwise"] < flops["A"]
    assert flops["A"] < flops["B"] < flops["C"]
    assert 500_000 < flops["A"] < 5_000_000
    # more input columns -> more work for a net that convolves along time
    assert count_flops(build_network("A", N_MELS, 87), N_MELS, 87) > flops["A"]


def test_flops_of_a_single_linear_layer_are_exact():
    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv1d(16, 8, 3, padding=1)
            self.fc = torch.nn.Linear(8, 1)

        def forward(self, x):
            return self.fc(self.conv(x).mean(dim=2)).squeeze(1)

    # conv: 8 outputs x 10 positions x 16 inputs x 3 taps; linear: 8; times 2
    assert count_flops(Tiny(), 16, 10) == 2 * (8 * 10 * 16 * 3 + 8)


def test_count_flops_restores_training_mode():
    net = build_network("CRNN", N_MELS, N_FRAMES).train()
    count_flops(net, N_MELS, N_FRAMES)
    assert net.training


def test_crnn_takes_a_gru():
    lstm = build_network("CRNN", N_MELS, N_FRAMES)
    gru = build_network("CRNN", N_MELS, N_FRAMES, rnn="gru")
    assert isinstance(gru.rnn, torch.nn.GRU)
    assert count_parameters(gru) < count_parameters(lstm)
    with pytest.raises(ValueError, match="rnn must be one of"):
        build_network("CRNN", N_MELS, N_FRAMES, rnn="transformer")


def test_width_scales_the_network():
    assert count_parameters(build_network("A", N_MELS, N_FRAMES, width=0.5)) < count_parameters(
        build_network("A", N_MELS, N_FRAMES)
    )


def test_unknown_architecture_lists_valid_names():
    with pytest.raises(ValueError) as info:
        build_network("Z", N_MELS, N_FRAMES)
    for name in ARCHITECTURES:
        assert name in str(info.value)


def test_unknown_keyword_is_a_clear_error():
    with pytest.raises(ValueError, match="does not take"):
        build_network("A", N_MELS, N_FRAMES, rnn="lstm")


def test_too_small_input_is_refused():
    with pytest.raises(ValueError, match="n_mels >= 16"):
        build_network("C", 8, N_FRAMES)
    with pytest.raises(ValueError, match="n_frames >= 6"):
        build_network("A", N_MELS, 5)


def test_wrong_band_count_is_a_clear_error():
    net = build_network("A", N_MELS, N_FRAMES)
    with pytest.raises(ValueError, match=r"expected input \(N, 64, T\)"):
        net(torch.zeros(2, 40, N_FRAMES))


def test_model_info_prints_every_architecture():
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("model_info", "--markdown", "--windows", "64", "--batch", "32", stdout=out)
    text = out.getvalue()
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| architecture | parameters")
    rows = {line.split(" | ")[0].strip("| "): line for line in lines[1:]}
    assert set(rows) == set(ARCHITECTURES)
    params_a = count_parameters(build_network("A", N_MELS, N_FRAMES))
    assert f"| {params_a:,} |" in rows["A"]
    assert "1x64x43" in rows["CRNN"]


def test_a_scores_fast_enough_for_live_streams():
    """Type A must be cheap: a margin-generous floor on single-thread throughput."""
    from detection.networks import windows_per_second

    speed = windows_per_second(build_network("A", N_MELS, N_FRAMES), N_MELS, N_FRAMES, 1024, 512)
    assert speed > 2_000, f"Type A scores only {speed:.0f} windows/s"


def test_members_build_an_ensemble_that_averages_logits_and_counts_all_members():
    single = build_network("A", 64, 44)
    ensemble = build_network("A", 64, 44, members=3)
    assert count_parameters(ensemble) == 3 * count_parameters(single)
    assert count_flops(ensemble, 64, 44) == 3 * count_flops(single, 64, 44)
    ensemble.eval()
    x = torch.randn(4, 64, 44)
    with torch.inference_mode():
        logits = ensemble(x)
        assert logits.shape == (4,)
        torch.testing.assert_close(logits, sum(m(x) for m in ensemble.members) / 3)
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="members"):
            build_network("A", 64, 44, members=bad)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_folding_batch_norms_keeps_the_scores_and_leaves_only_the_input_norm(arch):
    import copy

    from detection.networks import fold_batch_norms

    torch.manual_seed(0)
    net = build_network(arch, N_MELS, N_FRAMES)
    # Trained-looking statistics, so that a fold that ignored them would show.
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    with pytest.raises(ValueError, match="eval"):
        fold_batch_norms(net)
    net.eval()
    folded = fold_batch_norms(copy.deepcopy(net))
    norms = [m for m in folded.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    before = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms == [folded.input_norm] and len(before) > 1
    x = torch.randn(16, N_MELS, N_FRAMES) * 10
    with torch.inference_mode():
        torch.testing.assert_close(folded(x), net(x), rtol=1e-5, atol=1e-5)


def test_the_shipped_model_is_served_folded_and_scores_as_trained():
    import copy
    from pathlib import Path

    from detection.artifacts import load_model
    from detection.features import normalize_windows

    shipped = Path(__file__).resolve().parents[2] / "detection" / "shipped" / "default"
    model = load_model(shipped)
    nets = [m for m in model.net.modules() if hasattr(m, "input_norm")]
    norms = [m for m in model.net.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert nets and norms == [net.input_norm for net in nets]
    unfolded = build_network(
        model.config["architecture"], N_MELS, N_FRAMES, **model.config["arch_params"]
    )
    unfolded.load_state_dict(torch.load(shipped / "weights.pt", weights_only=True))
    unfolded.eval()
    windows = torch.randn(32, N_MELS, N_FRAMES).numpy() * 15 - 40
    x = torch.from_numpy(normalize_windows(copy.deepcopy(windows), model.features))
    with torch.inference_mode():
        expected = torch.sigmoid(unfolded(x)).numpy()
    torch.testing.assert_close(
        torch.from_numpy(model.predict(windows)), torch.from_numpy(expected), rtol=0, atol=1e-5
    )
