"""Preference data: the fixture, every source kind, and every kind of bad row or bad file a user
can hand the loader (each one either loads correctly or fails naming row, field, file and line)."""
import gzip
import json

import pytest

from prefalign_lite.engine import data
from prefalign_lite.settings.fixtures import FIXTURE, fixture_rows

GOOD = {"prompt": "add 1 2", "chosen": "3", "rejected": "4"}
GOOD2 = {"prompt": "sort 2 1", "chosen": "1 2", "rejected": "2 1"}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


@pytest.fixture()
def no_hub(monkeypatch):
    """Any call of ``datasets.load_dataset`` fails the test: local sources must never reach it."""
    import datasets

    def refuse(*args, **kwargs):
        raise AssertionError(f"load_dataset was called with {args} {kwargs}")

    monkeypatch.setattr(datasets, "load_dataset", refuse)


def test_fixture_is_the_kits_own_and_loads():
    assert [json.loads(line) for line in FIXTURE.read_text().splitlines()] == fixture_rows()
    rows, report = data.load_preferences(FIXTURE)
    assert report.rows_read == report.rows_kept == 40
    first = rows[0]
    assert first["prompt"] == [{"role": "user", "content": "add 0 4 8"}]
    assert first["chosen"] == [{"role": "assistant", "content": "11"}]
    assert first["rejected"] == [{"role": "assistant", "content": "12 12"}]
    assert first["gold_chosen"] == 0.75 and first["score_rejected"] == 1.0
    plain, _ = data.load_preferences(FIXTURE, conversational=False)
    assert (plain[0]["prompt"], plain[0]["chosen"], plain[0]["rejected"]) == ("add 0 4 8", "11", "12 12")
    # the rater's noisy labels are kept, and reported as a note
    below = sum(r["score_chosen"] < r["score_rejected"] for r in fixture_rows())
    assert below > 0 and report.notes["rows whose chosen scored below rejected"] == below


def test_write_fixture_is_atomic_and_checked(tmp_path):
    from prefalign_lite.settings.fixtures import write_fixture

    target = tmp_path / "f.jsonl"
    write_fixture(target, n=5)
    assert len(target.read_text().splitlines()) == 5 and [p.name for p in tmp_path.iterdir()] == ["f.jsonl"]
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        write_fixture(target, n=0)
    assert len(target.read_text().splitlines()) == 5


def test_dataset_saved_to_disk_loads_the_same(tmp_path):
    import datasets

    datasets.Dataset.from_list([json.loads(line) for line in FIXTURE.read_text().splitlines()]).save_to_disk(str(tmp_path / "ds"))
    from_disk, _ = data.load_preferences(tmp_path / "ds")
    from_jsonl, _ = data.load_preferences(FIXTURE)
    assert from_disk == from_jsonl


def test_saved_dataset_dict_names_its_splits(tmp_path):
    import datasets

    datasets.DatasetDict({"train_prefs": datasets.Dataset.from_list([GOOD]),
                          "test_prefs": datasets.Dataset.from_list([GOOD2])}).save_to_disk(str(tmp_path / "dd"))
    rows, _ = data.load_preferences(tmp_path / "dd", split="test_prefs", conversational=False)
    assert rows[0]["prompt"] == "sort 2 1"
    with pytest.raises(data.DataSourceError, match=r"no split 'train'; the saved dataset has \['test_prefs', 'train_prefs'\]"):
        data.load_preferences(tmp_path / "dd")


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


def test_unreachable_hub_id_says_it_was_treated_as_one(monkeypatch):
    import datasets

    def offline(name, split):
        raise ConnectionError("Couldn't reach the Hugging Face Hub (offline)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(data.DataSourceError) as info:
        data.load_preferences("my_prefs")
    message = str(info.value)
    assert "'my_prefs' is not a local file or folder, so it was treated as a hub dataset id" in message
    assert "ConnectionError: Couldn't reach" in message and "./my_prefs.jsonl" in message
    assert isinstance(info.value.__cause__, ConnectionError)


@pytest.mark.parametrize("source", ["./missing.jsonl", "missing.jsonl", "data/missing.parquet", "/no/such/dir",
                                    "~/no_such_prefs", "a/b/c", "my prefs", "prefs.json"])
def test_missing_local_paths_are_never_sent_to_the_hub(no_hub, tmp_path, monkeypatch, source):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=f"{source}: no such file or folder .*not looked up on the hub"):
        data.load_preferences(source)


def test_missing_path_suggests_near_names(no_hub, tmp_path):
    write_jsonl(tmp_path / "prefs.jsonl", [GOOD])
    with pytest.raises(FileNotFoundError, match=r"similar names there: \['prefs.jsonl'\]"):
        data.load_preferences(tmp_path / "prefs.jsnl")


def test_conversational_input_with_prompt_in_messages():
    row = {"chosen": [user("add 1 2"), assistant("3")], "rejected": [user("add 1 2"), assistant("5")]}
    assert data.normalise_row(row, 0)["prompt"] == [{"role": "user", "content": "add 1 2"}]


LOADS = [  # rows that look unusual but are fine: (row, the normalised plain row)
    ({"prompt": [user("add 1 2")], "chosen": [assistant("3")], "rejected": [assistant("4")]}, ("add 1 2", "3", "4")),
    ({"prompt": "add 1 2", "chosen": [user("add 1 2"), assistant("3")], "rejected": "4"}, ("add 1 2", "3", "4")),
    ({"prompt": "add 1 2", "chosen": [{"role": "assistant", "content": [{"type": "text", "text": "3"}]}],
      "rejected": "4"}, ("add 1 2", "3", "4")),
    ({"prompt": "add 1 2", "chosen": "3", "rejected": "4", "score_chosen": None, "score_rejected": 2}, ("add 1 2", "3", "4")),
]


@pytest.mark.parametrize("row,expected", LOADS)
def test_unusual_but_valid_rows_load(row, expected):
    out = data.normalise_row(row, 0, conversational=False)
    assert (out["prompt"], out["chosen"], out["rejected"]) == expected


BAD = [  # (row, the message it must give as row 1 of a file)
    ({"prompt": "add 1 2", "rejected": "4"}, "row 1, field 'chosen': missing"),
    ({"prompt": "add 1 2", "chosen": None, "rejected": "4"}, "row 1, field 'chosen': missing"),
    ({"prompt": "add 1 2", "chosen": "  ", "rejected": "4"}, "row 1, field 'chosen': empty completion"),
    ({"prompt": "add 1 2", "chosen": "3", "rejected": "3"}, "row 1, field 'rejected': identical to chosen"),
    ({"prompt": "add 1 2", "chosen": "3 ", "rejected": " 3"}, "row 1, field 'rejected': identical to chosen"),
    ({"prompt": "", "chosen": "3", "rejected": "4"}, "row 1, field 'prompt': missing or empty"),
    ({"prompt": " \t\n", "chosen": "3", "rejected": "4"}, "row 1, field 'prompt': missing or empty"),
    ({"chosen": "3", "rejected": "4"}, r"row 1, field 'prompt': missing \(no prompt field and no user turn\)"),
    ({"prompt": "add 1 2 " * 20, "chosen": "3", "rejected": "4"}, "row 1, field 'prompt': 60 words, over the limit of 50"),
    ({"prompt": "add 1 2", "chosen": 3, "rejected": "4"}, "row 1, field 'chosen': expected a string or a list of messages, got int 3"),
    ({"prompt": "add 1 2", "chosen": {"text": "3"}, "rejected": "4"}, "row 1, field 'chosen': expected a string .* got an object with keys"),
    ({"prompt": 12, "chosen": "3", "rejected": "4"}, "row 1, field 'prompt': expected a string or a list of messages, got int 12"),
    (None, "row 1, field '<row>': expected an object with prompt/chosen/rejected, got null"),
    ([GOOD], "row 1, field '<row>': expected an object .* got a list of 1 items"),
    (7, "row 1, field '<row>': expected an object .* got int 7"),
    ("add 1 2", "row 1, field '<row>': expected an object .* got str 'add 1 2'"),
    ({"prompt": "add 1 2", "chosen": [], "rejected": "4"}, "row 1, field 'chosen': an empty list of messages"),
    ({"prompt": "add 1 2", "chosen": [{"content": "3"}], "rejected": "4"}, "row 1, field 'chosen': message 0 has no 'role'"),
    ({"prompt": "add 1 2", "chosen": [{"role": "assistant"}], "rejected": "4"}, "row 1, field 'chosen': message 0 has no 'content'"),
    ({"prompt": "add 1 2", "chosen": [assistant(3)], "rejected": "4"}, "row 1, field 'chosen': message 0 has content int 3, expected text"),
    ({"prompt": "add 1 2", "chosen": ["3"], "rejected": "4"}, "row 1, field 'chosen': message 0 is str '3', not an object"),
    ({"prompt": "add 1 2", "chosen": [{"role": "bot", "content": "3"}], "rejected": "4"}, "row 1, field 'chosen': message 0 has role 'bot'"),
    ({"prompt": "add 1 2", "chosen": [{"role": "assistant", "content": [{"type": "image", "url": "x"}]}], "rejected": "4"},
     "row 1, field 'chosen': message 0, content part 0 is not a text part"),
    ({"prompt": "add 1 2", "chosen": [user("add 1 2")], "rejected": "4"}, "row 1, field 'chosen': last message is not the assistant's"),
    ({"prompt": "add 1 2", "chosen": [user("a"), assistant("b"), user("add 1 2"), assistant("3")], "rejected": "4"},
     r"row 1, field 'chosen': a conversation of 4 messages \(user, assistant, user, assistant\)"),
    ({"prompt": "add 1 2", "chosen": [{"role": "system", "content": "be nice"}, user("add 1 2"), assistant("3")],
      "rejected": "4"}, "row 1, field 'chosen': holds a system message"),
    ({"prompt": [user("add 1 2"), assistant("3")], "chosen": "3", "rejected": "4"},
     r"row 1, field 'prompt': messages \(user, assistant\); expected exactly one user message"),
    ({"prompt": "add 1 2", "chosen": [user("add 9 9"), assistant("3")], "rejected": "4"},
     "row 1, field 'chosen': its user turn 'add 9 9' differs from the prompt 'add 1 2'"),
    ({"chosen": [user("add 1 2"), assistant("3")], "rejected": [user("sort 1"), assistant("4")]},
     "row 1, field 'rejected': its user turn 'sort 1' differs from the prompt 'add 1 2'"),
    ({**GOOD, "score_chosen": float("nan")}, r"row 1, field 'score_chosen': not finite \(nan\)"),
    ({**GOOD, "score_rejected": float("inf")}, r"row 1, field 'score_rejected': not finite \(inf\)"),
    ({**GOOD, "score_chosen": "8.5"}, "row 1, field 'score_chosen': expected a number, got str '8.5'"),
    ({**GOOD, "score_chosen": True}, "row 1, field 'score_chosen': expected a number, got bool True"),
]


@pytest.mark.parametrize("bad,message", BAD)
def test_bad_rows_raise_naming_row_field_file_and_line(tmp_path, bad, message):
    path = write_jsonl(tmp_path / "p.jsonl", [GOOD, bad, GOOD2])
    with pytest.raises(data.PreferenceDataError, match=message) as info:
        data.load_preferences(path, max_prompt_words=50)
    assert info.value.row == 1 and f"[{path}, line 2]" in str(info.value)


def test_skip_mode_survives_every_bad_row_and_counts_each_reason(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [GOOD] + [b for b, _ in BAD])
    rows, report = data.load_preferences(path, on_error="skip", max_prompt_words=50)
    assert len(rows) == 1 and report.rows_read == 1 + len(BAD) and sum(report.skipped.values()) == len(BAD)
    assert report.skipped["rejected: identical to chosen"] == 2
    assert report.skipped["<row>: not an object"] == 4 and report.first_skipped["<row>: not an object"] == 13
    assert report.skipped["score_chosen: not a finite number"] == 1
    assert report.skipped["chosen: user turn differs from the prompt"] == 1
    assert f"kept 1, skipped {len(BAD)}" in str(report) and "4 <row>: not an object (first: row 13)" in str(report)


def test_duplicate_rows_are_refused_or_skipped(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [GOOD, GOOD2, GOOD, {**GOOD2, "chosen": "2 1", "rejected": "1 2"}])
    with pytest.raises(data.PreferenceDataError, match=r"row 2, field '<row>': duplicate of row 0 .*line 3"):
        data.load_preferences(path)
    rows, report = data.load_preferences(path, on_error="skip")
    assert len(rows) == 3 and report.skipped["<row>: duplicate of an earlier row"] == 1
    assert report.notes["pairs also labelled the other way round"] == 1


def test_repeated_key_in_one_object_is_refused(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(GOOD) + '\n{"prompt": "a", "chosen": "1", "chosen": "2", "rejected": "3"}\n')
    with pytest.raises(data.PreferenceDataError, match=r"row 1, field 'chosen': appears twice in one object .*line 2"):
        data.load_preferences(path)


def test_invalid_json_names_the_file_and_line_and_skip_goes_on(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n{not json\n" + json.dumps(GOOD2)[:12])
    with pytest.raises(data.PreferenceDataError, match=rf"row 1, field '<line>': not valid JSON .*\[{path}, line 3\]"):
        data.load_preferences(path)
    rows, report = data.load_preferences(path, on_error="skip")
    assert len(rows) == 1 and report.skipped["<line>: not valid JSON"] == 2 and report.first_skipped["<line>: not valid JSON"] == 1


def test_invalid_utf8_names_the_file_line_and_byte(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"prompt": "caf\xe9", "chosen": "1", "rejected": "2"}\n'
                     + json.dumps(GOOD2).encode() + b"\n")
    with pytest.raises(data.PreferenceDataError, match=rf"not valid UTF-8 \(byte 0xe9 at column 16\) \[{path}, line 2\]"):
        data.load_preferences(path)
    rows, report = data.load_preferences(path, on_error="skip")
    assert len(rows) == 2 and report.skipped["<line>: not valid UTF-8"] == 1


def test_bom_crlf_and_gzip_load(tmp_path):
    text = "\ufeff" + json.dumps(GOOD) + "\r\n\r\n" + json.dumps(GOOD2) + "\r\n"
    (tmp_path / "p.jsonl").write_text(text, encoding="utf-8", newline="")
    with gzip.open(tmp_path / "p.jsonl.gz", "wt", encoding="utf-8", newline="") as fh:
        fh.write(text)
    for name in ("p.jsonl", "p.jsonl.gz"):
        rows, report = data.load_preferences(tmp_path / name, conversational=False)
        assert [r["prompt"] for r in rows] == ["add 1 2", "sort 2 1"] and report.rows_read == 2, name


def test_json_file_as_array_or_as_lines(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([GOOD, GOOD2], indent=2))
    (tmp_path / "b.json").write_text(json.dumps(GOOD) + "\n" + json.dumps(GOOD2) + "\n")
    for name in ("a.json", "b.json"):
        rows, _ = data.load_preferences(tmp_path / name, conversational=False)
        assert [r["chosen"] for r in rows] == ["3", "1 2"], name
    (tmp_path / "c.json").write_text(json.dumps([GOOD, None]))
    with pytest.raises(data.PreferenceDataError, match=r"row 1, field '<row>': .*got null \[.*c.json, array item 1\]"):
        data.load_preferences(tmp_path / "c.json")


@pytest.mark.parametrize("content, message", [
    (b"", "no rows"),
    (b"\n  \n\r\n", "no rows"),
    (b'[{"prompt": "a"},\n {"prompt": }]', r"line 2, column 13: not valid JSON .*read as one JSON array"),
    (b'[{"prompt": "caf\xe9"}]', r"line 1: not valid UTF-8 \(byte 0xe9\)"),
    (b"[]", "no rows"),
    (b'{\n "data": [{"prompt": "a"}]\n}\n', r"one JSON object spread over several lines.*key\(s\) \['data'\] hold lists"),
    ('{"prompt": "x"}\n'.encode("utf-16"), "UTF-16 text; save it as UTF-8"),
])
def test_unreadable_files_fail_as_a_whole_naming_the_file(tmp_path, content, message):
    path = tmp_path / "p.json"
    path.write_bytes(content)
    for mode in ("raise", "skip"):
        with pytest.raises(data.DataSourceError, match=message) as info:
            data.load_preferences(path, on_error=mode)
        assert str(path) in str(info.value)


def test_skip_mode_with_nothing_usable_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [None, {"prompt": "a"}])
    with pytest.raises(data.DataSourceError, match=r"no usable rows \(read 2 rows, kept 0, skipped 2"):
        data.load_preferences(path, on_error="skip")


def test_parquet_file_and_hub_layout_folder(tmp_path, no_hub):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "hub" / "data").mkdir(parents=True)
    (tmp_path / "hub" / "README.md").write_text("a dataset card")
    pq.write_table(pa.Table.from_pylist([GOOD, GOOD2]), tmp_path / "hub" / "data" / "train_prefs-00000-of-00001.parquet")
    pq.write_table(pa.Table.from_pylist([GOOD2]), tmp_path / "hub" / "data" / "test_prefs-00000-of-00001.parquet")
    rows, _ = data.load_preferences(tmp_path / "hub" / "data" / "train_prefs-00000-of-00001.parquet", conversational=False)
    assert [r["chosen"] for r in rows] == ["3", "1 2"]
    rows, _ = data.load_preferences(tmp_path / "hub", split="test_prefs", conversational=False)
    assert [r["chosen"] for r in rows] == ["1 2"]
    with pytest.raises(data.DataSourceError, match=r"no data file for split 'train' .*splits \['test_prefs', 'train_prefs'\]"):
        data.load_preferences(tmp_path / "hub")
    (tmp_path / "one").mkdir()
    write_jsonl(tmp_path / "one" / "prefs.jsonl", [GOOD])
    assert len(data.load_preferences(tmp_path / "one")[0]) == 1  # a lone data file is the 'train' split
    (tmp_path / "fake.parquet").write_text("not parquet")
    with pytest.raises(data.DataSourceError, match="fake.parquet: named .parquet but is not a Parquet file"):
        data.load_preferences(tmp_path / "fake.parquet")


def test_folder_that_is_not_a_dataset_and_split_of_a_file(tmp_path, no_hub):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    with pytest.raises(data.DataSourceError, match=r"notes: neither a dataset saved with save_to_disk .* holds \['readme.txt'\]"):
        data.load_preferences(tmp_path / "notes")
    path = write_jsonl(tmp_path / "p.jsonl", [GOOD])
    with pytest.raises(data.DataSourceError, match="a single file has one split, 'train'; split 'test' does not exist"):
        data.load_preferences(path, split="test")


def test_huge_row_loads(tmp_path):
    big = " ".join(["7"] * 300_000)  # ~600 KB completion
    path = write_jsonl(tmp_path / "p.jsonl", [GOOD, {**GOOD2, "chosen": big}])
    rows, _ = data.load_preferences(path, conversational=False)
    assert len(rows[1]["chosen"]) == len(big)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"on_error": "ignore"}, ValueError, "on_error must be 'raise' or 'skip'"),
    ({"max_prompt_words": 0}, ValueError, "max_prompt_words must be an integer >= 1"),
    ({"split": ""}, ValueError, "split must be a non-empty string"),
    ({"source": 5}, TypeError, "source must be a path or a hub dataset id"),
    ({"source": "  "}, ValueError, "source is empty"),
])
def test_bad_arguments(tmp_path, kwargs, error, message):
    kwargs = {"source": write_jsonl(tmp_path / "p.jsonl", [GOOD]), **kwargs}
    with pytest.raises(error, match=message):
        data.load_preferences(**kwargs)


def test_read_rows_raises_at_the_first_undecodable_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(GOOD) + "\nnull\n{oops\n")
    with pytest.raises(data.PreferenceDataError, match=r"row 2, field '<line>'.*line 3"):
        data.read_rows(path)
    path.write_text(json.dumps(GOOD) + "\nnull\n")
    assert data.read_rows(path) == [GOOD, None]


def test_spa_split_proportions_and_disjointness():
    prompts = [f"p{i}" for i in range(600)] + ["p0", "p1"]  # duplicates count once
    split = data.spa_split(prompts, seed=0)
    assert [len(split[k]) for k in ("seed", "iter1", "iter2", "iter3")] == [20, 80, 200, 300]
    seen = [p for part in split.values() for p in part]
    assert len(seen) == len(set(seen)) == 600
    assert data.spa_split(prompts, total=120)["seed"].__len__() == 4
    assert {k: len(v) for k, v in data.spa_split(prompts, total=9, proportions=(1, 1, 1)).items()} == \
        {"seed": 3, "iter1": 3, "iter2": 3}
    with pytest.raises(ValueError, match="distinct prompts"):
        data.spa_split(prompts, total=1000)


def test_spa_split_with_too_few_prompts_says_how_many_are_needed():
    with pytest.raises(ValueError, match=r"10 distinct prompts split 2:8:20:30 leave part 'seed' empty; .*at least (\d+)") as info:
        data.spa_split([f"p{i}" for i in range(10)])
    need = int(str(info.value).split("at least ")[1].split()[0])
    parts = data.spa_split([f"p{i}" for i in range(need)])
    assert min(len(v) for v in parts.values()) == 1  # the number given is enough...
    with pytest.raises(ValueError, match="empty"):    # ...and the smallest that is
        data.spa_split([f"p{i}" for i in range(need - 1)])


@pytest.mark.parametrize("kwargs, message", [
    ({"proportions": ()}, "proportions must list at least two shares"),
    ({"proportions": (1,)}, "proportions must list at least two shares"),
    ({"proportions": (2, 0, 20)}, r"proportions\[1\] must be a finite number > 0, got 0"),
    ({"proportions": (2, -8)}, r"proportions\[1\] must be a finite number > 0, got -8"),
    ({"proportions": (2, float("nan"))}, r"proportions\[1\] must be a finite number > 0"),
    ({"proportions": ("2", 8)}, r"proportions\[0\] must be a finite number > 0, got '2'"),
    ({"total": 0}, "total must be an integer >= 1, got 0"),
    ({"prompts": ["a", None]}, r"prompts\[1\] must be a non-empty string, got None"),
    ({"prompts": ["a", "  "]}, r"prompts\[1\] must be a non-empty string"),
])
def test_spa_split_bad_arguments(kwargs, message):
    kwargs = {"prompts": [f"p{i}" for i in range(100)], **kwargs}
    with pytest.raises(ValueError, match=message):
        data.spa_split(**kwargs)
