"""The real-size run's code path (notebook 11's DPO and SPA's seed plus one round on a real dataset
layout, judged by a reward model), on the small stand-ins; the real size itself runs in gpu-check."""
from prefalign_lite.replication.real_size import run_real_size


def test_the_real_size_path_runs_on_the_small_standins():
    record = run_real_size(n_prompts=30, n_eval=2, new_tokens=4, max_length=96, model="standin:policy",
                           dataset="standin:dataset", judge="standin:reward_model")
    assert record["model"] == "standin:policy" and record["total_s"] > 0
    assert [r["iteration"] for r in record["spa"]["rounds"]] == [0, 1] and record["spa"]["gate"] is not None
    assert 0 <= record["dpo_baseline"]["win_rate"] <= 1
