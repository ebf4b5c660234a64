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


def test_a_phase_past_its_limit_is_stopped_and_recorded_and_the_json_is_written_after_it(tmp_path):
    (tmp_path / "slow_phase.py").write_text("import time\n\ndef run():\n    time.sleep(60)\n    return {'total_s': 60}\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import slow_phase

        record = gpu_check.run_check("cpu", tmp_path / "check", real_size=slow_phase.run, plan={},
                                     timeouts={"real_size": 3})
    finally:
        sys.path.remove(str(tmp_path))
    assert record["real_size"] == {"error": "timed out after 3 s"} and record["phases_done"] == ["real_size"]
    saved = json.loads((tmp_path / "check" / "gpu-check.json").read_text())
    assert saved["real_size"] == record["real_size"] and "torch" in saved["versions"]
    assert "| real-size 0.5B | error | timed out after 3 s |" in (tmp_path / "check" / "gpu-check.md").read_text()


def test_a_check_killed_mid_run_keeps_the_phases_it_finished(tmp_path):
    """The JSON and the table are rewritten after every phase: killing the check while its second
    phase runs leaves the first phase's figures on disk."""
    import os
    import signal
    import time

    (tmp_path / "hang_phase.py").write_text("import time\n\ndef run():\n    time.sleep(600)\n")
    out = tmp_path / "check"
    script = ("import sys; sys.path.insert(0, %r); import hang_phase\n"
              "from prefalign_lite.bench import gpu_check\n"
              "gpu_check.run_check('cpu', %r, real_size=hang_phase.run)\n") % (str(tmp_path), str(out))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 500
        while time.time() < deadline and proc.poll() is None:
            path = out / "gpu-check.json"
            if path.exists() and json.loads(path.read_text()).get("phases_done") == ["tiny"]:
                break
            time.sleep(1)
        assert proc.poll() is None, "the check ended before it could be killed in its second phase"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    saved = json.loads((out / "gpu-check.json").read_text())
    assert saved["phases_done"] == ["tiny"] and saved["real_size"] is None
    assert isinstance(saved["benches"]["tiny"].get("kit.dpo.step_s"), (int, float))
    assert "| tiny | DPO step peak GB |" in (out / "gpu-check.md").read_text()
