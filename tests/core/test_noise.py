import pytest
import torch

from prefalign_lite.core.noise import AdaptiveThreshold, refinement_alpha


def test_threshold_is_the_k_quantile_of_the_previous_window():
    th = AdaptiveThreshold(k=0.1, window=50)
    assert th.tau == 0.0  # the authors' code: 0 until the window is full
    assert th(torch.tensor([-1.0, 0.0, 1.0])).tolist() == [1.0, 1.0, 0.0]  # <= 0 flagged meanwhile
    th.update(torch.arange(100, dtype=torch.float64))  # window keeps the last 50: 50..99
    assert th.tau == pytest.approx(0.5 * (55 + 56))  # floor(50 * 0.1) = 5 -> 6th and 7th smallest
    z = th(torch.tensor([55.0, 55.5, 56.0, 200.0] + [100.0] * 46))
    assert z.tolist()[:4] == [1.0, 1.0, 0.0, 0.0]  # judged against the window before this batch (<=)
    assert th.tau == 100.0  # now the window is this batch: [55, 55.5, 56, 200, 100 x 46]


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
