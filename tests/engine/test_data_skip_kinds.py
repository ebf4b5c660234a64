"""The loader's skip mode counts every skipped row under one kind of ``data.SKIP_KINDS`` (identical
pairs, empty prompts or answers, exact duplicates, prompts over the word limit, and malformed rows
for every other reason), beside its detailed reasons."""
import json
from collections import Counter

from prefalign_lite.engine import data


def test_every_skipped_row_has_one_kind(tmp_path):
    rows = [{"prompt": "add 1 2", "chosen": "3", "rejected": "4"},
            {"prompt": "add 1 2", "chosen": "3", "rejected": "4"},                 # exact duplicate
            {"prompt": "add 2 2", "chosen": "4", "rejected": "4 "},                # identical up to whitespace
            {"prompt": "add 3 2", "chosen": "5", "rejected": "\n"},                # empty answer
            {"prompt": "", "chosen": "5", "rejected": "6"},                        # empty prompt
            {"prompt": " ".join(["word"] * 9), "chosen": "5", "rejected": "6"},    # over the word limit
            {"prompt": "add 4 2", "rejected": "6"},                                # no chosen
            {"prompt": "add 5 2", "chosen": [{"role": "bot", "content": "7"}], "rejected": "8"}]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "[1, 2\n")
    kept, report = data.load_preferences(path, on_error="skip", max_prompt_words=8)
    assert len(kept) == 1 and report.rows_read == 9
    assert report.kinds == Counter({"identical pair": 1, "empty prompt or answer": 2, "duplicate row": 1,
                                    "prompt over the word limit": 1, "malformed row": 3})
    assert sum(report.kinds.values()) == sum(report.skipped.values()) == report.rows_read - report.rows_kept
    assert set(report.kinds) <= set(data.SKIP_KINDS)
    assert report.skipped["rejected: empty completion"] == 1 and report.skipped["prompt: missing or empty"] == 1
