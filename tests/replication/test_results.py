"""Metrics files: written whole, gathered by seed, the committed run read from the package."""
import pytest

from prefalign_lite.replication import results


def test_metrics_are_written_whole_and_gathered_by_seed(tmp_path):
    assert results.save_metrics("", {"a": 1}) is None
    for seed in (0, 2):
        results.save_metrics(tmp_path / f"seed{seed}" / "11_dpo_baselines", {"win": 0.5 + seed / 10})
    assert not list(tmp_path.rglob("*.partial"))
    assert results.load_runs(tmp_path) == {"11_dpo_baselines": {0: {"win": 0.5}, 2: {"win": 0.7}}}
    with pytest.raises(ValueError):
        results.save_metrics(tmp_path / "bad", {"loss": float("nan")})
    assert not (tmp_path / "bad" / "metrics.json").exists()
