"""Issue 19, items 2 and 14: ``run --check`` refuses a stage that asks for more prompts than its
dataset's split holds (the stand-in, or the published split sizes of UltraFeedback-binarized), and
on CUDA ``--jobs`` gives every running stage a GPU of its own."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from prefalign_lite.replication import config as C
from prefalign_lite.replication import pipeline
from prefalign_lite.replication.prompt_needs import check_prompt_needs, training_prompts

ROOT = Path(__file__).resolve().parents[2]


def _defaults(stage):
    return C.notebook_parameters(stage.path)


def test_the_real_configs_fit_ultrafeedbacks_published_splits():
    for name in ("mistral7b-sft-4bit.yaml", "qwen0.5b-4bit.yaml", "scale-smoke-qwen.yaml", "scale-smoke-zephyr.yaml"):
        cfg = C.load_config(ROOT / "configs" / name)
        assert check_prompt_needs(cfg, _defaults, name) == [], name
    seven_b = C.load_config(ROOT / "configs" / "mistral7b-sft-4bit.yaml")
    needs = [training_prompts(s.notebook, {**_defaults(s), **s.parameters}) for s in seven_b.stages]
    assert max(n for n in needs if n) <= 61_135   # train_prefs' rows; the evaluation prompts come from test_prefs


def test_check_refuses_a_stage_asking_for_more_prompts_than_the_split_has(tmp_path):
    raw = yaml.safe_load((ROOT / "configs" / "mistral7b-sft-4bit.yaml").read_text())
    raw["stages"][0]["parameters"]["n_prompts"] = 60000   # the old size: 64,000 training prompts
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    problems = check_prompt_needs(C.load_config(bad), _defaults, "bad.yaml")
    assert problems == ["bad.yaml: stage 11_dpo_baselines: its parameters (n_prompts=60000, n_eval=805, n_offline=3000) need "
                        "64000 training prompts, but split 'train_prefs' of HuggingFaceH4/ultrafeedback_binarized has at most "
                        "61135 distinct prompts (its published rows)"]
    raw = yaml.safe_load((ROOT / "configs" / "scale-smoke-qwen.yaml").read_text())
    raw["stages"][0]["parameters"].update(n_prompts=600, n_eval=200)
    bad.write_text(yaml.safe_dump(raw))
    done = subprocess.run([sys.executable, "-m", "prefalign_lite", "run", "--config", str(bad), "--check"], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ})
    assert done.returncode == 2
    assert "n_eval=200 evaluation prompts, but split 'test_prefs' of standin:ultrafeedback_binarized has 100" in done.stderr
    assert "need 640 training prompts, but split 'train_prefs' of standin:ultrafeedback_binarized has 400" in done.stderr


def test_jobs_default_to_one_per_gpu_and_never_share_one():
    assert pipeline.resolve_jobs(None, []) == 1 and pipeline.resolve_jobs("auto", []) == 2   # a CPU: as before
    assert pipeline.resolve_jobs(None, ["0", "1"]) == 2 and pipeline.resolve_jobs("auto", ["3"]) == 1
    with pytest.raises(ValueError, match="--jobs 2 on 1 GPU"):
        pipeline.resolve_jobs(2, ["0"])   # the Makefile's old JOBS=2 on one GPU
    assert "JOBS ?= auto" in (ROOT / "Makefile").read_text()


def test_each_running_stage_sees_only_its_own_gpu(tmp_path, monkeypatch):
    """Two seeds on two (pretended) GPUs: the kernels run at once, each with CUDA_VISIBLE_DEVICES of
    its own, read back from inside the notebook."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    folder = tmp_path / "notebooks"
    folder.mkdir()
    cell = new_code_cell('seed = 0\nout_dir = ""')
    cell.metadata["tags"] = ["parameters"]
    body = ("import os, time\nfrom prefalign_lite.replication import results\ntime.sleep(3)\n"
            "results.save_metrics(out_dir, {'gpu': os.environ.get('CUDA_VISIBLE_DEVICES')})")
    nb = new_notebook(cells=[cell, new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(folder / "31_gpu.ipynb"))
    monkeypatch.setattr(C, "NOTEBOOKS", folder)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump({"name": "t", "seeds": [0, 1], "stages": [{"notebook": "31_gpu"}]}))
    monkeypatch.setattr(pipeline, "visible_gpus", lambda: ["4", "7"])
    lines = []
    pipeline.run(C.load_config(tmp_path / "cfg.yaml"), [0, 1], tmp_path / "run", echo=lines.append)
    import json

    seen = sorted(json.loads((tmp_path / "run" / f"seed{s}" / "31_gpu" / "metrics.json").read_text())["gpu"] for s in (0, 1))
    assert seen == ["4", "7"]
    assert sorted(line.split()[-1] for line in lines if "running on GPU" in line) == ["4", "7"]
