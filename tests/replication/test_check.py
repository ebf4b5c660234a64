"""``run --check`` reads the config as the run will: the named splits, every prompt count a stage
draws (the offline set of notebook 11 too), the usable rows of local data after the pair filters,
every local path and stand-in name (refused, never skipped, and never built to be checked), and a
hub id it has no table for reported as not checked rather than valid."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from prefalign_lite import settings
from prefalign_lite.replication import config as C
from prefalign_lite.replication.prompt_needs import check_inputs

ROOT = Path(__file__).resolve().parents[2]
UF, RM, POLICY = "standin:ultrafeedback_binarized", "standin:skywork-reward-v2-qwen3-0.6b", "standin:qwen2.5-0.5b-instruct"
UF_SPLITS = "['test_gen', 'test_prefs', 'test_sft', 'train_gen', 'train_prefs', 'train_sft']"


def _config(tmp_path, *stages, model=POLICY) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "model": model, "seeds": [0],
                                    "stages": [{"notebook": nb, "parameters": p} for nb, p in stages]}))
    return path


def _check(tmp_path, *stages, model=POLICY):
    return check_inputs(C.load_config(_config(tmp_path, *stages, model=model)),
                        lambda stage: C.notebook_parameters(stage.path), "cfg.yaml")


def _sr(**params):
    return "16_sr_dpo", {"dataset": UF, "judge": RM, "n_prompts": 30, "n_eval": 4, **params}


def test_a_named_split_the_dataset_lacks_is_refused(tmp_path):
    found = _check(tmp_path, _sr(split="train"), ("13_spa", {"dataset": UF, "judge": RM, "n_prompts": 30, "n_eval": 4,
                                                            "seed_fractions": [], "eval_split": "validation"}))
    assert len(found.problems) == 2, found.problems
    assert found.problems[0].startswith("cfg.yaml: stage 16_sr_dpo: parameter 'split' = 'train': DataSourceError: ")
    assert found.problems[0].endswith(f"no split 'train'; the saved dataset has {UF_SPLITS}")
    assert found.problems[1].startswith("cfg.yaml: stage 13_spa: parameter 'eval_split' = 'validation': DataSourceError: ")
    assert found.problems[1].endswith(f"no split 'validation'; the saved dataset has {UF_SPLITS}")
    assert found.not_checked == []


def test_the_named_split_is_counted_not_the_default_one(tmp_path):
    # test_prefs holds 100 prompts; it is the evaluation split too, so 4 of them may go to evaluation
    assert _check(tmp_path, _sr(split="test_prefs", n_prompts=96)).problems == []
    found = _check(tmp_path, _sr(split="test_prefs", n_prompts=97))
    assert found.problems == ["cfg.yaml: stage 16_sr_dpo: its parameters (n_prompts=97, n_eval=4) need 97 training prompts, "
                              "but split 'test_prefs' of standin:ultrafeedback_binarized has 100 usable distinct prompts "
                              "(100 rows read; every row used); up to 4 of them are drawn as evaluation prompts from "
                              "split 'test_prefs'"]
    found = _check(tmp_path, _sr(eval_split="test_sft", n_eval=51))   # test_sft has 50 rows
    assert found.problems == ["cfg.yaml: stage 16_sr_dpo: n_eval=51 evaluation prompts, but split 'test_sft' of "
                              "standin:ultrafeedback_binarized has 50 usable distinct prompts (50 rows read; every row used)"]


def test_the_run_refuses_what_the_check_refuses():
    """The check's count is the setting's: 97 training prompts of test_prefs fail in the run too."""
    setting = settings.from_parameters(UF, RM, split="test_prefs")
    setting.pool(4, 96, seed=0)
    with pytest.raises(ValueError, match="asked for 97 training prompts, but split 'test_prefs' has 96 distinct prompts "
                                         "outside the evaluation ones"):
        setting.pool(4, 97, seed=0)


def test_every_prompt_count_a_stage_draws_is_counted(tmp_path):
    found = _check(tmp_path, ("11_dpo_baselines", {"dataset": UF, "judge": RM, "n_prompts": 30, "n_eval": 4, "n_offline": 401}),
                   ("14_spa_judges_and_ablations", {"dataset": UF, "judge": RM, "n_prompts": 30, "n_eval": 4, "rm_prompts": 369}),
                   ("17_dro_dpo", {"dataset": UF, "judge": RM, "n_prompts": 30, "n_eval": 4, "n_offline": 400}))
    have = "but split 'train_prefs' of standin:ultrafeedback_binarized has 400 usable distinct prompts (400 rows read; every row used)"
    assert found.problems == [
        f"cfg.yaml: stage 11_dpo_baselines: its parameters (n_prompts=30, n_eval=4, n_offline=401) need 401 training prompts, {have}",
        f"cfg.yaml: stage 14_spa_judges_and_ablations: its parameters (n_prompts=30, n_eval=4, rm_prompts=369) need 401 "
        f"training prompts, {have}"]   # 14: SPA's pool of 32 + 369; 17's 400 offline prompts fit


def test_unknown_or_wrong_kind_stand_ins_are_refused_without_building_a_model(tmp_path, monkeypatch):
    resolved = []
    real = settings.resolve
    monkeypatch.setattr(settings, "resolve", lambda name: resolved.append(name) or real(name))
    found = _check(tmp_path, ("16_sr_dpo", {"dataset": "standin:ultrafeedback", "judge": "standin:skywork", "n_eval": 4}),
                   ("15_sera", {"dataset": "standin:policy", "judge": "standin:policy", "n_eval": 4}),
                   ("13_spa", {"dataset": UF, "judge": RM, "n_prompts": 30, "n_eval": 4, "seed_fractions": []}))
    assert found.problems == [
        "cfg.yaml: stage 16_sr_dpo: judge 'standin:skywork' is no stand-in the kit has; the reward model stand-ins are "
        "standin:reward_model, standin:skywork-reward-v2-llama-3.1-8b, standin:skywork-reward-v2-qwen3-0.6b",
        "cfg.yaml: stage 16_sr_dpo: dataset 'standin:ultrafeedback' is no stand-in the kit has; the dataset stand-ins are "
        "standin:dataset, standin:ultrafeedback_binarized",
        "cfg.yaml: stage 15_sera: judge 'standin:policy' is a policy stand-in, not a reward model; the reward model "
        "stand-ins are standin:reward_model, standin:skywork-reward-v2-llama-3.1-8b, standin:skywork-reward-v2-qwen3-0.6b",
        "cfg.yaml: stage 15_sera: dataset 'standin:policy' is a policy stand-in, not a dataset; the dataset stand-ins are "
        "standin:dataset, standin:ultrafeedback_binarized"]
    assert resolved == [UF]   # the dataset stand-in's rows are read; no model stand-in is built or even looked up


def test_a_config_model_stand_in_is_a_policy_the_kit_has(tmp_path):
    with pytest.raises(C.ConfigError, match=r"cfg.yaml: model 'standin:polcy' is no stand-in the kit has; the policy "
                                            r"stand-ins are standin:policy, standin:qwen2.5-0.5b-instruct, "
                                            r"standin:zephyr-7b-sft-full, standin:qwen2.5-0.5b-instruct-full-size"):
        C.load_config(_config(tmp_path, _sr(), model="standin:polcy"))
    with pytest.raises(C.ConfigError, match="model 'standin:reward_model' is a reward model stand-in, not a policy"):
        C.load_config(_config(tmp_path, _sr(), model="standin:reward_model"))


def test_missing_paths_and_missing_pieces_are_refused(tmp_path):
    missing = tmp_path / "no_rm"
    found = _check(tmp_path, ("16_sr_dpo", {"dataset": "./no/such.jsonl", "judge": str(missing), "n_eval": 4}), model=None)
    assert found.problems[0] == f"cfg.yaml: stage 16_sr_dpo: judge path '{missing}' does not exist or holds no config.json"
    assert found.problems[1] == ("cfg.yaml: stage 16_sr_dpo: dataset './no/such.jsonl' needs an SFT model, but the config's "
                                 "'model' is null (the embedded tiny model); set it to a path, a hub id or a stand-in")
    assert found.problems[2].startswith("cfg.yaml: stage 16_sr_dpo: dataset: ./no/such.jsonl: no such file or folder "
                                        "(looked for ")
    assert len(found.problems) == 3
    found = _check(tmp_path, ("16_sr_dpo", {"dataset": UF, "n_prompts": 30, "n_eval": 4}), ("15_sera", {"judge": RM, "split": "train_prefs"}))
    assert found.problems == [
        "cfg.yaml: stage 16_sr_dpo: dataset 'standin:ultrafeedback_binarized' needs a judge (a reward model by path, hub id "
        "or stand-in), but 'judge' is empty",
        "cfg.yaml: stage 15_sera: judge='standin:skywork-reward-v2-qwen3-0.6b', split='train_prefs' given without a dataset; "
        "the embedded world has its own prompts and gold judge (set 'dataset', or leave these empty)"]


def test_local_data_is_counted_after_the_pair_filters(tmp_path):
    rows = [{"prompt": f"question {i}", "chosen": "a good answer", "rejected": "a poor answer"} for i in range(6)]
    rows += [{"prompt": "question 0", "chosen": "another answer", "rejected": "a poor answer"},   # a second pair of a prompt
             {"prompt": "question 7", "chosen": "same", "rejected": "same"},                     # identical
             {"prompt": "question 8", "chosen": " ", "rejected": "a poor answer"}]               # empty answer
    data = tmp_path / "prefs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n")
    found = _check(tmp_path, ("16_sr_dpo", {"dataset": str(data), "judge": RM, "n_prompts": 3, "n_eval": 4}))
    assert found.problems == [
        f"cfg.yaml: stage 16_sr_dpo: its parameters (n_prompts=3, n_eval=4) need 3 training + 4 evaluation prompts, but "
        f"split 'train' of {data} has 6 usable distinct prompts (10 rows read; not used 4: identical pair 1, empty prompt "
        "or answer 1, malformed row 1, another pair of the same prompt 1)"]
    assert _check(tmp_path, ("16_sr_dpo", {"dataset": str(data), "judge": RM, "n_prompts": 2, "n_eval": 4})).problems == []


def _cli_check(path: Path):
    return subprocess.run([sys.executable, "-m", "prefalign_lite", "run", "--config", str(path), "--check"], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ})


def test_a_hub_id_the_kit_has_no_table_for_is_not_checked_and_not_called_valid(tmp_path):
    found = _check(tmp_path, _sr(dataset="someone/prefs", judge="someone/reward-model"), model="someone/sft")
    assert found.problems == []
    assert found.not_checked == [
        "cfg.yaml: model 'someone/sft' is a hub id, not looked up offline",
        "cfg.yaml: stage 16_sr_dpo: judge 'someone/reward-model' is a hub id, not looked up offline",
        "cfg.yaml: stage 16_sr_dpo: dataset 'someone/prefs' is a hub id whose splits the kit does not know; its splits and "
        "prompt counts are not checked offline"]
    path = _config(tmp_path, _sr(dataset="someone/prefs"))
    done = _cli_check(path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0] == (f"not checked: {path}: stage 16_sr_dpo: dataset 'someone/prefs' is a hub id whose splits the kit "
                        "does not know; its splits and prompt counts are not checked offline")
    assert lines[-1] == (f"{path}: no problem found, but not checked in full (1 stages, seeds [0]; 1 input(s) not checked "
                         "offline, listed above)")
    done = _cli_check(ROOT / "configs" / "scale-smoke.yaml")   # stand-ins only: every input is checked
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"{ROOT / 'configs' / 'scale-smoke.yaml'}: valid (4 stages, seeds [0])"


def test_the_named_splits_of_a_published_hub_dataset_are_checked_against_its_table(tmp_path):
    raw = yaml.safe_load((ROOT / "configs" / "mistral7b-sft-4bit.yaml").read_text())
    raw["stages"][0]["parameters"]["split"] = "train"
    raw["stages"][2]["parameters"].update(eval_split="test_sft", n_eval=1001)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
    found = check_inputs(C.load_config(tmp_path / "bad.yaml"), lambda stage: C.notebook_parameters(stage.path), "bad.yaml")
    assert found.problems == [
        "bad.yaml: stage 11_dpo_baselines: parameter 'split' = 'train': HuggingFaceH4/ultrafeedback_binarized has no split "
        "'train'; its splits are ['test_gen', 'test_prefs', 'test_sft', 'train_gen', 'train_prefs', 'train_sft']",
        "bad.yaml: stage 13_spa: n_eval=1001 evaluation prompts, but split 'test_sft' of HuggingFaceH4/ultrafeedback_binarized "
        "has at most 1000 distinct prompts (its published rows)"]
    assert found.not_checked[0] == "bad.yaml: model 'alignment-handbook/zephyr-7b-sft-full' is a hub id, not looked up offline"
