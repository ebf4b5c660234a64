import json

import pytest

from prefalign_lite import data
from prefalign_lite.fixture import FIXTURE, fixture_rows

GOOD = {"prompt": "add 1 2", "chosen": "3", "rejected": "4"}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_fixture_is_the_kits_own_and_loads():
    assert [json.loads(line) for line in FIXTURE.read_text().splitlines()] == fixture_rows()
    rows, report = data.load_preferences(FIXTURE)
    assert report.rows_read == report.rows_kept == 40
    first = rows[0]
    assert first["prompt"] == [{"role": "user", "content": "add 0 4"}]
    assert first["chosen"] == [{"role": "assistant", "content": "3"}]
    assert first["rejected"] == [{"role": "assistant", "content": "4 4"}]
    assert first["gold_chosen"] == 0.75 and first["score_rejected"] == 1.0
    plain, _ = data.load_preferences(FIXTURE, conversational=False)
    assert (plain[0]["prompt"], plain[0]["chosen"], plain[0]["rejected"]) == ("add 0 4", "3", "4 4")


def test_dataset_saved_to_disk_loads_the_same(tmp_path):
    import datasets

    datasets.Dataset.from_list([json.loads(line) for line in FIXTURE.read_text().splitlines()]).save_to_disk(str(tmp_path / "ds"))
    from_disk, _ = data.load_preferences(tmp_path / "ds")
    from_jsonl, _ = data.load_preferences(FIXTURE)
    assert from_disk == from_jsonl


def test_hub_id_goes_through_load_dataset_without_network(monkeypatch):
    import datasets

    seen = {}

    def fake_load_dataset(name, split):
        seen["args"] = (name, split)
        return [GOOD]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    rows, _ = data.load_preferences("someone/ultrafeedback_binarized", split="train_prefs")
    assert seen["args"] == ("someone/ultrafeedback_binarized", "train_prefs")
    assert rows[0]["chosen"] == [{"role": "assistant", "content": "3"}]


def test_conversational_input_with_prompt_in_messages():
    row = {"chosen": [{"role": "user", "content": "add 1 2"}, {"role": "assistant", "content": "3"}],
           "rejected": [{"role": "user", "content": "add 1 2"}, {"role": "assistant", "content": "5"}]}
    assert data.normalise_row(row, 0)["prompt"] == [{"role": "user", "content": "add 1 2"}]


BAD = [
    ({"prompt": "add 1 2", "rejected": "4"}, "row 1, field 'chosen': missing"),
    ({"prompt": "add 1 2", "chosen": "  ", "rejected": "4"}, "row 1, field 'chosen': empty completion"),
    ({"prompt": "add 1 2", "chosen": "3", "rejected": "3"}, "row 1, field 'rejected': identical to chosen"),
    ({"prompt": "", "chosen": "3", "rejected": "4"}, "row 1, field 'prompt': missing or empty"),
    ({"prompt": "add 1 2 " * 20, "chosen": "3", "rejected": "4"}, "row 1, field 'prompt': 60 words, over the limit of 50"),
    ({"prompt": "add 1 2", "chosen": 3, "rejected": "4"}, "row 1, field 'chosen': expected a string"),
]


@pytest.mark.parametrize("bad,message", BAD)
def test_bad_rows_raise_naming_row_and_field(tmp_path, bad, message):
    path = write_jsonl(tmp_path / "p.jsonl", [GOOD, bad, GOOD])
    with pytest.raises(data.PreferenceDataError, match=message.replace("(", r"\(")):
        data.load_preferences(path, max_prompt_words=50)


def test_skip_mode_counts_and_reports(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [GOOD] + [b for b, _ in BAD])
    rows, report = data.load_preferences(path, on_error="skip", max_prompt_words=50)
    assert len(rows) == 1 and report.rows_read == 7 and sum(report.skipped.values()) == 6
    assert report.skipped["rejected: identical to chosen"] == 1
    assert "kept 1, skipped 6" in str(report)


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(GOOD) + "\n{not json\n")
    with pytest.raises(data.PreferenceDataError, match="row 1"):
        data.load_preferences(path)


def test_spa_split_proportions_and_disjointness():
    prompts = [f"p{i}" for i in range(600)] + ["p0", "p1"]  # duplicates count once
    split = data.spa_split(prompts, seed=0)
    assert [len(split[k]) for k in ("seed", "iter1", "iter2", "iter3")] == [20, 80, 200, 300]
    seen = [p for part in split.values() for p in part]
    assert len(seen) == len(set(seen)) == 600
    assert data.spa_split(prompts, total=120)["seed"].__len__() == 4
    with pytest.raises(ValueError, match="distinct prompts"):
        data.spa_split(prompts, total=1000)
