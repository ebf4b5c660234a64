"""A real dataset's setting counts every row it does not use, by reason, in ``row_counts`` (what a
stage's metrics record) and in its log line: the loader's skipped rows by kind, and the pairs set
aside because their prompt already has one (one pair per prompt keeps SPA's parts disjoint)."""
import json
import logging

from prefalign_lite.settings import DatasetSetting, resolve
from prefalign_lite.settings.dataset import SAME_PROMPT, read_split

JUDGE = "standin:skywork-reward-v2-qwen3-0.6b"
NONE_SKIPPED = {"identical pair": 0, "empty prompt or answer": 0, "duplicate row": 0, "prompt over the word limit": 0,
                "malformed row": 0}


def _write(path, rows, extra_lines=()):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "".join(line + "\n" for line in extra_lines))
    return path


def _pairs_per_prompt(prompts: int, pairs: int) -> list[dict]:
    return [{"prompt": f"question {i}", "chosen": f"good answer {k}", "rejected": f"poor answer {k}"}
            for k in range(pairs) for i in range(prompts)]


def test_several_pairs_per_prompt_keep_one_and_count_the_rest(tmp_path, caplog):
    data = _write(tmp_path / "p.jsonl", _pairs_per_prompt(5, 3))
    with caplog.at_level(logging.INFO, logger="prefalign_lite.settings.dataset"):
        setting = DatasetSetting(source=str(data), judge_model=resolve(JUDGE))
    assert setting.row_counts == {"training": {"split": "train", "read": 15, "kept": 5, **NONE_SKIPPED, SAME_PROMPT: 10}}
    assert [r["chosen"] for r in setting.rows] == ["good answer 0"] * 5   # the first pair of each prompt
    assert f"dataset {data} [train]: read 15 rows, kept 5 (one pair per distinct prompt); not used 10: another pair of " \
           "the same prompt 10" in caplog.text
    pool = setting.pool(2, 2, seed=0)
    assert len(pool.eval_prompts) == 2 and len(pool.train) == 2
    assert setting.row_counts["pool"] == {"evaluation prompts": 2, "training prompts": 2,
                                          "training prompts held out as evaluation prompts": 0, "training prompts not drawn": 1}


def test_every_kind_of_unused_row_is_counted_apart(tmp_path, caplog):
    rows = _pairs_per_prompt(4, 2) + [
        {"prompt": "question 0", "chosen": "good answer 0", "rejected": "poor answer 0"},   # an exact duplicate
        {"prompt": "question 5", "chosen": "same", "rejected": " same "},                   # identical
        {"prompt": "question 6", "chosen": "", "rejected": "poor"},                         # an empty answer
        {"prompt": "  ", "chosen": "good", "rejected": "poor"},                             # an empty prompt
        {"prompt": "question 7", "chosen": 3, "rejected": "poor"}]                          # malformed
    data = _write(tmp_path / "p.jsonl", rows, extra_lines=["{not json", "null"])
    with caplog.at_level(logging.WARNING, logger="prefalign_lite.settings.dataset"):
        read = read_split(str(data), "train")
    assert read.counts == {"read": 15, "kept": 4, "identical pair": 1, "empty prompt or answer": 2, "duplicate row": 1,
                           "prompt over the word limit": 0, "malformed row": 3, SAME_PROMPT: 4}
    assert read.counts["read"] == sum(n for k, n in read.counts.items() if k != "read")
    assert (f"dataset {data} [train]: read 15 rows, kept 4 (one pair per distinct prompt); not used 11: identical pair 1, "
            "empty prompt or answer 2, duplicate row 1, malformed row 3, another pair of the same prompt 4") in caplog.text


def test_prompts_that_differ_only_in_surrounding_whitespace_are_one_prompt(tmp_path):
    data = _write(tmp_path / "p.jsonl", [{"prompt": "question 0", "chosen": "a", "rejected": "b"},
                                         {"prompt": "question 0 ", "chosen": "c", "rejected": "d"}])
    read = read_split(str(data), "train")
    assert read.counts["kept"] == 1 and read.counts[SAME_PROMPT] == 1 and read.rows[0]["chosen"] == "a"


def test_the_uf_stand_in_uses_every_row_and_its_evaluation_split_is_counted():
    setting = DatasetSetting(source=resolve("standin:ultrafeedback_binarized"), judge_model=resolve(JUDGE))
    assert setting.row_counts == {"training": {"split": "train_prefs", "read": 400, "kept": 400, **NONE_SKIPPED, SAME_PROMPT: 0},
                                  "evaluation": {"split": "test_prefs", "read": 100, "kept": 100, **NONE_SKIPPED, SAME_PROMPT: 0}}
    setting.pool(4, 30, seed=0)
    assert setting.row_counts["pool"] == {"evaluation prompts": 4, "training prompts": 30,
                                          "training prompts held out as evaluation prompts": 0,
                                          "training prompts not drawn": 370}
