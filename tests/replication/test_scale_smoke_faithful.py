"""configs/scale-smoke-qwen.yaml and configs/scale-smoke-zephyr.yaml end to end on the quirk-faithful
stand-ins (issue 19): UltraFeedback-binarized's splits (no ``train``), Qwen2's newline-merging
tokenizer and generation defaults, Zephyr's BOS-less template, reward models without a pad token,
through the same pipeline and notebooks (11, 12, 13, 20) a real run uses. Numbers are from tiny
models: the test checks that the path runs and the report names its judge. Measured on two CPU
cores shared with another job: 95 s (qwen) and 108 s (zephyr), plus about 35 s per stand-in model
the first time it is built."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name, judge", [("qwen", "skywork-reward-v2-qwen3-0.6b"),
                                         ("zephyr", "skywork-reward-v2-llama-3.1-8b")])
def test_faithful_scale_smoke_runs_through_the_pipeline(tmp_path, name, judge):
    out = tmp_path / name
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "prefalign_lite", "run", "--config", f"configs/scale-smoke-{name}.yaml",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = (out / "20_replication_report" / "report.md").read_text()
    assert "SPA Table 1" in report and "| DPO on all gold |" in report
    spa = json.loads((out / "seed0" / "13_spa" / "metrics.json").read_text())
    assert judge in spa["judge"] and len(spa["spa"]["rounds"]) == 4
    print(f"scale-smoke-{name}: {seconds:.0f} s")
