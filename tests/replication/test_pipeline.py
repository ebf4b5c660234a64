"""The replication pipeline on two tiny notebooks: skipping stages that are up to date, resuming a
run that was killed, and stopping at a failing stage (the config checks are in test_config.py)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from prefalign_lite.replication import config as C

ROOT = Path(__file__).resolve().parents[2]


def _notebook(path: Path, body: str, params: str) -> None:
    cell = new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[cell, new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


@pytest.fixture()
def books(tmp_path, monkeypatch):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    body = ("import time\nfrom prefalign_lite.replication import results\ntime.sleep(sleep)\nassert not fail, 'planted failure'\n"
            "results.save_metrics(out_dir, {'seed': seed, 'value': 10 * seed})")
    _notebook(folder / "31_first.ipynb", body, 'seed = 0\nout_dir = ""\nsleep = 0.0\nfail = False')
    _notebook(folder / "32_second.ipynb", body, 'seed = 0\nout_dir = ""\nsleep = 0.0\nfail = False')
    _notebook(folder / "39_gather.ipynb", "from prefalign_lite.replication import results\nprint(sorted(results.load_runs(run_dir)))",
              'run_dir = ""')
    monkeypatch.setattr(C, "NOTEBOOKS", folder)
    monkeypatch.setenv("PREFALIGN_NOTEBOOKS", str(folder))
    return folder


def _config(tmp_path, second=None, name="cfg.yaml", **top):
    second = second or {}
    raw = {"name": "t", "seeds": [0, 1], "stages": [
        {"notebook": "31_first"}, {"notebook": "32_second", "parameters": second},
        {"notebook": "39_gather", "per_seed": False}], **top}
    path = tmp_path / name
    import yaml
    path.write_text(yaml.safe_dump(raw))
    return path


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "prefalign_lite", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ}, **kw)


def test_kill_and_resume(books, tmp_path):
    from prefalign_lite.replication import pipeline, results

    out = tmp_path / "run"
    cfg = _config(tmp_path, {"sleep": 6.0})
    proc = subprocess.Popen([sys.executable, "-m", "prefalign_lite", "run", "--config", str(cfg), "--seeds", "0", "1",
                             "--out", str(out)], cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "seed0" / "32_second" / "32_second.partial.ipynb").exists():
        assert time.time() < deadline and proc.poll() is None, "the run never reached the second stage"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the run and its kernel, mid-stage
    proc.wait()
    assert (out / "seed1" / "31_first" / "stage.json").exists()
    assert not (out / "seed0" / "32_second" / "stage.json").exists()
    assert not (out / "seed0" / "32_second" / "32_second.ipynb").exists()  # nothing half-written under the final name

    statuses = pipeline.run(C.load_config(cfg), [0, 1], out, echo=lambda _: None)
    done = {(s["stage"], s["seed"]): s["status"] for s in statuses}
    assert done == {("31_first", 0): "skipped", ("31_first", 1): "skipped", ("32_second", 0): "ran",
                    ("32_second", 1): "ran", ("39_gather", None): "ran"}
    assert results.load_runs(out)["32_second"] == {0: {"seed": 0, "value": 0}, 1: {"seed": 1, "value": 10}}
    again = pipeline.run(C.load_config(cfg), [0, 1], out, echo=lambda _: None)
    assert {s["status"] for s in again} == {"skipped"}
    # a changed parameter re-runs that stage only; the gathering stage re-runs only if a metrics file changed
    changed = pipeline.run(C.load_config(_config(tmp_path, {"sleep": 0.5}, name="b.yaml")), [0, 1], out, echo=lambda _: None)
    assert [s["stage"] for s in changed if s["status"] == "ran"] == ["32_second", "32_second"]
    (out / "seed1" / "31_first" / "metrics.json").write_text('{"seed": 1, "value": 11}')
    (out / "seed1" / "31_first" / "stage.json").write_text('{"key": "stale"}')
    rerun = pipeline.run(C.load_config(cfg), [0, 1], out, echo=lambda _: None)
    assert [(s["stage"], s["seed"]) for s in rerun if s["status"] == "ran"] == [("31_first", 1), ("32_second", 0), ("32_second", 1)]


def test_stages_wait_for_what_they_name_and_the_most_awaited_start_first(books, tmp_path):
    """``after`` narrows what a stage waits for; among ready jobs the one most of the run waits on
    starts first."""
    from prefalign_lite.replication import pipeline

    import yaml
    raw = yaml.safe_load(_config(tmp_path).read_text())
    raw["stages"] = [{"notebook": "31_first", "per_seed": True, "after": []}, {"notebook": "32_second", "after": []},
                     {"notebook": "39_gather", "per_seed": False}]
    (tmp_path / "after.yaml").write_text(yaml.safe_dump(raw))
    jobs = pipeline.plan(C.load_config(tmp_path / "after.yaml"), [0, 1], tmp_path / "run")
    assert [pipeline.depends_on(jobs, i) for i in range(len(jobs))] == [[], [], [], [], [0, 1, 2, 3]]
    assert pipeline.waiting_on(jobs) == [1, 1, 1, 1, 0]


def test_plan_returns_typed_jobs_in_the_order_they_run(books, tmp_path):
    import dataclasses

    from prefalign_lite.replication import pipeline

    run = tmp_path / "run"
    jobs = pipeline.plan(C.load_config(_config(tmp_path)), [0, 1], run)
    assert all(isinstance(job, pipeline.Job) for job in jobs)
    assert [(job.stage.notebook, job.seed, job.folder) for job in jobs] == [
        ("31_first", 0, run / "seed0" / "31_first"), ("31_first", 1, run / "seed1" / "31_first"),
        ("32_second", 0, run / "seed0" / "32_second"), ("32_second", 1, run / "seed1" / "32_second"),
        ("39_gather", None, run / "39_gather")]
    with pytest.raises(dataclasses.FrozenInstanceError):
        jobs[0].seed = 5


def test_the_toy_plan_starts_the_sft_model_first_and_methods_after_the_fairness_checks(tmp_path):
    from prefalign_lite.replication import pipeline

    toy = pipeline.plan(C.load_config(ROOT / "configs" / "toy.yaml"), [0, 1], tmp_path / "toy")
    name = lambda i: (toy[i].stage.notebook, toy[i].seed)  # noqa: E731
    waiting = pipeline.waiting_on(toy)
    first = sorted(range(len(toy)), key=lambda i: (-waiting[i], i))[:3]
    assert [name(i) for i in first] == [("10_synthetic_world_and_sft", None), ("11_dpo_baselines", 0), ("11_dpo_baselines", 1)]
    for i, job in enumerate(toy):
        stage = job.stage
        deps = {name(j) for j in pipeline.depends_on(toy, i)}
        if stage.notebook.startswith("0") or stage.notebook.startswith("10"):
            assert deps == set()
        elif stage.notebook == "11_dpo_baselines":
            assert deps == {("10_synthetic_world_and_sft", None)}
        elif stage.notebook == "12_fairness_checks":
            assert deps == {("11_dpo_baselines", 0), ("11_dpo_baselines", 1)}
        elif stage.notebook == "20_replication_report":
            assert deps == {name(j) for j in range(i)}
        else:
            assert deps == {("12_fairness_checks", None)}


def test_failing_stage_keeps_its_notebook_and_stops(books, tmp_path):
    out = tmp_path / "run"
    result = _cli("run", "--config", str(_config(tmp_path, {"fail": True})), "--seeds", "0", "--out", str(out))
    assert result.returncode == 1
    assert "stage 32_second failed" in result.stderr and "planted failure" in result.stderr
    failed = out / "seed0" / "32_second" / "32_second.failed.ipynb"
    assert failed.exists() and "planted failure" in failed.read_text()
    assert (out / "seed0" / "31_first" / "stage.json").exists() and not (out / "39_gather").exists()
    assert json.loads((out / "seed0" / "31_first" / "metrics.json").read_text()) == {"seed": 0, "value": 0}


def test_a_run_that_degenerates_half_way_names_the_stage_and_keeps_what_finished(tmp_path):
    """configs/degenerate-demo.yaml: SPA samples its round-1 pairs at temperature 1e-6, so every pair
    is identical; the run stops there with the cause, and the finished baseline stage is kept and
    skipped on a rerun. About 25 s (the embedded SFT model is cached by then)."""
    out = tmp_path / "degenerate"
    result = _cli("run", "--config", "configs/degenerate-demo.yaml", "--out", str(out), timeout=600)
    assert result.returncode != 0
    assert "stage 13_spa failed (ValueError: SPA round 1: all 80 sampled pairs were identical" in result.stderr
    assert "nothing to train on" in result.stderr
    assert (out / "seed0" / "13_spa" / "13_spa.failed.ipynb").exists()
    assert (out / "seed0" / "11_dpo_baselines" / "metrics.json").exists()
    again = _cli("run", "--config", "configs/degenerate-demo.yaml", "--out", str(out), timeout=600)
    assert "11_dpo_baselines seed 0: skipped (outputs up to date)" in again.stdout + again.stderr


def test_a_notebook_runs_in_its_folder_and_two_at_once_leave_this_process_where_it_was(tmp_path):
    from concurrent.futures import ThreadPoolExecutor
    from prefalign_lite.replication.runner import execute_one
    books = tmp_path / "books"
    books.mkdir()
    _notebook(books / "31_where.ipynb", "import os, time\ntime.sleep(1)\nopen(out, 'w').write(os.getcwd())", 'out = ""')
    here = os.getcwd()
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(execute_one, books / "31_where.ipynb", tmp_path / f"out{i}", {"out": str(tmp_path / f"cwd{i}")})
                for i in range(2)]
        for r in runs:
            r.result()
    assert os.getcwd() == here
    assert [(tmp_path / f"cwd{i}").read_text() for i in range(2)] == [str(books)] * 2
