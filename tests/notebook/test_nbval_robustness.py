"""nbval fails on regressions only: the sandbox notebooks 00-05 pass under the other set of CPU kernels
on one thread (where trained numbers move in their last digits), and fail when an objective is wrong
(a planted sign flip in ``objectives.dpo_loss``). Each runs nbval in a subprocess; about 90 s and 20 s
on 2 CPU cores."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("0[0-5]_*.ipynb"))
NBVAL = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--nbval", "--nbval-current-env",
         "--nbval-sanitize-with", "notebooks/sanitize.cfg"]


def other_kernels() -> dict[str, str]:
    """Environment variables that make torch (and MKL) use the CPU kernels this machine does not use
    by default: AVX2 on an AVX-512 machine, the portable ones elsewhere."""
    if torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        return {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}
    return {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}


def _env(pythonpath: Path, **extra) -> dict:
    return {**os.environ, "PYTHONPATH": str(pythonpath), "OMP_NUM_THREADS": "1", **extra}


def _run(cmd, env, cwd=ROOT, timeout=900):
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_sandbox_notebooks_pass_nbval_on_the_other_cpu_kernels_and_one_thread():
    assert len(SANDBOX) == 6, SANDBOX
    env = _env(ROOT, **other_kernels())
    probe = _run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability(), torch.get_num_threads())"], env)
    capability, threads = probe.stdout.split()
    assert capability != torch.backends.cpu.get_cpu_capability() and threads == "1", probe.stdout
    done = _run(NBVAL + SANDBOX, env)
    assert done.returncode == 0, f"nbval under {other_kernels()}, one thread:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}"
    assert " passed" in done.stdout and "failed" not in done.stdout


def test_a_sign_flip_planted_in_dpo_loss_fails_nbval(tmp_path):
    shutil.copytree(ROOT / "prefalign_lite", tmp_path / "prefalign_lite", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "notebooks").mkdir()
    for name in ("01_bradley_terry_and_dpo.ipynb", "sanitize.cfg"):
        shutil.copy(ROOT / "notebooks" / name, tmp_path / "notebooks" / name)
    objectives = tmp_path / "prefalign_lite" / "objectives.py"
    right = "return -F.logsigmoid(beta * log_ratio_margin(pi_w, pi_l, ref_w, ref_l))"
    source = objectives.read_text()
    assert source.count(right) == 1, "dpo_loss changed: plant the flip in its new form"
    objectives.write_text(source.replace(right, right.replace("(beta *", "(-beta *")))
    env = _env(tmp_path)
    where = _run([sys.executable, "-c", "import prefalign_lite; print(prefalign_lite.__file__)"], env, cwd=tmp_path / "notebooks")
    assert Path(where.stdout.strip()).is_relative_to(tmp_path), where.stdout
    done = _run(NBVAL + ["notebooks/01_bradley_terry_and_dpo.ipynb"], env, cwd=tmp_path)
    assert done.returncode == 1, done.stdout[-3000:]
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED notebooks/01_bradley_terry_and_dpo.ipynb::Cell")]
    assert len(failed) >= 3, done.stdout[-3000:]  # the gradient checks, the training and its solutions
