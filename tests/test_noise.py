import pytest
import torch

from prefalign_lite.noise import AdaptiveThreshold, refinement_alpha


def test_threshold_is_the_k_quantile_of_the_window():
    th = AdaptiveThreshold(k=0.1, window=50)
    assert th.tau is None
    th.update(torch.arange(100, dtype=torch.float64))  # window keeps the last 50: 50..99
    assert th.tau == pytest.approx(0.5 * (54 + 55))  # index floor(50 * 0.1) = 5 -> mean of 54, 55
    z = th(torch.tensor([54.0, 55.0, 200.0] + [100.0] * 47))
    # after adding these, the window is [54, 55, 200, 100 x 47]: tau = mean(100, 100)
    assert th.tau == 100.0
    assert z.tolist()[:3] == [1.0, 1.0, 0.0]


def test_threshold_flags_about_k_of_a_stream():
    th = AdaptiveThreshold(k=0.1, window=50)
    g = torch.Generator().manual_seed(0)
    flags = torch.cat([th(torch.randn(32, generator=g)) for _ in range(200)])
    assert 0.07 < flags.mean().item() < 0.13


def test_refinement_warmup_and_bad_input():
    assert [refinement_alpha(s, 10, 0.1) for s in range(4)] == [0.0, 0.0, 0.1, 0.1]
    with pytest.raises(ValueError, match="window"):
        AdaptiveThreshold(window=1)
    with pytest.raises(ValueError, match="k"):
        AdaptiveThreshold(k=2.0)
    with pytest.raises(ValueError, match="margins"):
        AdaptiveThreshold()(torch.tensor([float("nan")]))
