"""`python -m prefalign_lite bench` on the tiny shape, CPU, few steps: every figure is there, finite
and positive, the JSON is written whole, the projection follows its formula. Timing targets are
reported by the benchmark, not asserted here. About 15 s."""
import json
import math

import pytest

from prefalign_lite.bench import benchmark as bench
from prefalign_lite.bench import shapes as bench_shapes


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench-tiny.json"
    r = bench.run(bench.BenchConfig("tiny", device="cpu", warmup=1, steps=2, pairs=8, sample_batches=(4, 8),
                                    sample_new_tokens=4, out=out))
    return r, out


POSITIVE = ["kit.dpo.step_s", "kit.dpo.peak_gb", "kit.spa.step_s", "kit.spa.peak_gb", "trl.dpo.step_s",
            "trl.dpo.peak_gb", "bare.step_s", "bare.peak_gb", "kit.forward_s", "sample.tokens_per_s.b4",
            "sample.tokens_per_s.b8", "sample_merged.tokens_per_s.b4", "sample_merged.tokens_per_s.b8",
            "sample.tokens_per_s.best", "projection.sample_h", "projection.judge_h", "projection.train_h",
            "projection.spa_iteration_h", "projection.score_h", "projection.evaluate_h", "reward.score_s",
            "base.parameters", "bench_seconds"]


def test_every_figure_is_finite_and_positive(result):
    r, _ = result
    missing = [k for k in POSITIVE if k not in r]
    assert not missing, f"missing keys {missing}; trl.error: {r.get('trl.error')}"
    for key in POSITIVE:
        assert isinstance(r[key], (int, float)) and math.isfinite(r[key]) and r[key] > 0, key
    assert r["shape"] == "tiny" and r["device"] == "cpu" and r["batch.pairs"] == 8 and r["batch.max_length"] == 24
    assert r["kit.dpo.bf16"] is False and r["kit.dpo.gradient_checkpointing"] is False
    assert r["trl.dpo.bf16"] is True and r["trl.dpo.gradient_checkpointing"] is False
    assert r["version.torch"] and r["version.trl"] and r["sample_merged.dtype"] == "float32"
    assert r["kit.dpo.steps_timed"] == 2 and r["trl.dpo.steps_timed"] == 2


def test_targets_are_recorded_with_value_limit_and_verdict(result):
    r, _ = result
    for name, limit in (("kit_dpo_step_over_bare", 2.0), ("kit_dpo_step_over_trl", 1.0),
                        ("kit_spa_step_over_kit_dpo", 1.15), ("kit_spa_peak_over_kit_dpo", 1.3)):
        assert r[f"target.{name}.limit"] == limit
        assert r[f"target.{name}.holds"] == (r[f"target.{name}.value"] <= limit)
    assert r["target.kit_dpo_step_over_bare.value"] == pytest.approx(r["kit.dpo.step_s"] / r["bare.step_s"])
    assert "target.kit_dpo_peak_gb.value" not in r  # the GPU targets are not checked on a CPU


def test_json_is_written_whole_and_the_table_prints(result):
    r, out = result
    assert json.loads(out.read_text()) == json.loads(json.dumps(r))
    assert not [p for p in out.parent.iterdir() if p.name != out.name]  # no temporary file left
    table = bench.format_table(r)
    assert "kit.dpo" in table and "trl.dpo" in table and "target kit_dpo_step_over_bare" in table


def test_projection_formula_includes_scoring_and_evaluation():
    """Item 13: the projection used to stop at sampling, judging and training."""
    p = bench.project_spa_iteration(10_000, tokens_per_s=3000.0, forward_s=0.5, spa_step_s=1.5, pairs=4,
                                    bench_length=1024, score_s=0.8, score_rows=16, score_length=1024,
                                    n_eval=500, kl_prompts=100)
    assert p["projection.sample_h"] == pytest.approx(2 * 10_000 * 300 / 3000 / 3600)
    assert p["projection.judge_h"] == pytest.approx(2 * (20_000 / 8) * 0.5 / 3600)
    assert p["projection.score_h"] == pytest.approx(20_000 / 16 * 0.8 / 3600)
    assert p["projection.train_h"] == pytest.approx(10_000 / 4 * 1.5 / 3600)
    assert p["projection.evaluate_h"] == pytest.approx((600 * 300 / 3000 + 500 / 16 * 0.8 + 3 * 100 / 8 * 0.5) / 3600)
    assert p["projection.spa_iteration_h"] == pytest.approx(sum(p[f"projection.{k}_h"] for k in
                                                                ("sample", "judge", "score", "train", "evaluate")))


def test_shapes_are_the_real_architectures_and_bad_names_are_refused():
    mistral = bench_shapes.build_config(bench_shapes.get_shape("mistral-7b"))
    assert (mistral.hidden_size, mistral.num_hidden_layers, mistral.num_key_value_heads, mistral.vocab_size,
            mistral.intermediate_size) == (4096, 32, 8, 32000, 14336)
    assert mistral.use_cache   # item 3: the bench's configs said use_cache=False and its sampling re-fed every token
    qwen = bench_shapes.build_config(bench_shapes.get_shape("qwen2.5-0.5b"))
    assert (qwen.model_type, qwen.hidden_size, qwen.num_attention_heads, qwen.vocab_size) == ("qwen2", 896, 14, 151936)
    with pytest.raises(ValueError, match="unknown shape 'gpt-5'"):
        bench_shapes.get_shape("gpt-5")
    with pytest.raises(ValueError, match="steps >= 1"):
        bench.run(bench.BenchConfig("tiny", steps=0))
