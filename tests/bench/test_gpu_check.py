"""``python -m prefalign_lite gpu-check --device cpu``: the dry run of the prepared GPU check, at the
tiny shape, writes one JSON and one Markdown table with every measured peak beside its estimate
and the targets with their verdicts. About 30 s."""
import json
import subprocess
import sys
from pathlib import Path

from prefalign_lite.bench import gpu_check

ROOT = Path(__file__).resolve().parents[2]


def test_the_cpu_dry_run_writes_one_json_and_one_table(tmp_path):
    out = tmp_path / "check"
    done = subprocess.run([sys.executable, "-m", "prefalign_lite", "gpu-check", "--device", "cpu", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    record = json.loads((out / "gpu-check.json").read_text())
    assert record["device"] == "cpu" and list(record["benches"]) == ["tiny"] and record["real_size"] is None
    tiny = record["benches"]["tiny"]
    for key in ("kit.dpo.peak_gb", "kit.spa.step_s", "trl.dpo.step_s", "reward.peak_gb", "estimate.training_step_gb",
                "estimate.reward_scoring_gb", "estimate.sampling.b4_gb", "sample.tokens_per_s.b8",
                "projection.spa_iteration_h"):
        assert isinstance(tiny.get(key), (int, float)), key
    table = (out / "gpu-check.md").read_text()
    assert table.startswith("gpu-check on cpu") and "| shape | figure | measured | estimate / limit | holds |" in table
    assert "| tiny | DPO step peak GB |" in table and "| tiny | target kit_dpo_step_over_bare |" in table
    assert "| tiny | sampling b4 tokens/s (peak GB) |" in table
    assert sorted(p.name for p in out.iterdir()) == ["bench-tiny-cpu.json", "gpu-check.json", "gpu-check.md"]


def test_the_table_reports_a_failed_shape_and_the_real_size_run():
    record = {"device": "cuda", "seconds": 1.0, "benches": {"mistral-7b": {"error": "OutOfMemoryError: CUDA"}},
              "real_size": {"load_and_sft_answers_s": 3.0, "dpo_baseline_s": 1.5, "spa_seed_and_round_s": 4.0,
                            "total_s": 8.5}}
    table = gpu_check.format_check(record)
    assert "| mistral-7b | error | OutOfMemoryError: CUDA |" in table
    assert "| real-size 0.5B | total_s | 8.5 |" in table
