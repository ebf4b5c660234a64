"""The lean trainer: TRL's DPO loss exactly, a step cost near a bare forward+backward, and it learns."""
import time

import pytest
import torch
from conftest import perturbed_policy, plain_rows, reference_of

from prefalign_lite import plugins, tiny, trainer


@pytest.fixture(scope="module")
def setup():
    return (*perturbed_policy(seed=0), plain_rows(64, seed=4))


def test_dpo_loss_equals_trl_dpotrainer(setup):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    path, policy, ref, tok, rows = setup
    conv = [{"prompt": [{"role": "user", "content": r["prompt"]}], "chosen": [{"role": "assistant", "content": r["chosen"]}],
             "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in rows[:8]]
    args = DPOConfig(output_dir="/tmp/prefalign-trl-check", beta=0.1, per_device_train_batch_size=8, max_length=64,
                     report_to=[], use_cpu=True, bf16=False, gradient_checkpointing=False)
    trl_trainer = DPOTrainer(model=policy, args=args, train_dataset=Dataset.from_list(conv), processing_class=tok)
    inputs = trl_trainer.data_collator([trl_trainer.train_dataset[i] for i in range(8)])
    with torch.no_grad():
        trl_loss = trl_trainer.compute_loss(trl_trainer.model, inputs).item()
    ours = trainer.PreferenceTrainer(policy, tok, plugins.dpo(0.1), reference_of(ref),
                                     trainer.TrainConfig(max_length=64, progress=False))
    with torch.no_grad():
        x = ours.step_inputs(rows[:8], 0, 1)
        our_loss = ours.objective.loss(x)[0].mean().item()
    print(f"DPO loss on one batch: TRL {trl_loss:.6f}, ours {our_loss:.6f}")
    assert our_loss == pytest.approx(trl_loss, abs=1e-5)
    assert abs(our_loss - 0.693147) > 1e-3  # policy differs from reference: not a trivial log 2


def test_step_cost_against_a_bare_forward_backward(setup):
    path, policy, ref, tok, rows = setup
    ours = trainer.PreferenceTrainer(policy, tok, plugins.dpo(0.1), reference_of(ref),
                                     trainer.TrainConfig(batch_size=32, progress=False))
    batch = ours.encode(rows[:32])
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-6)

    def bare():
        out = policy(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        out.float().mean().backward(); opt.step(); opt.zero_grad()

    def step():
        x = ours.step_inputs(rows[:32], 0, 1)
        ours.objective.loss(x)[0].mean().backward(); opt.step(); opt.zero_grad()

    def timed(fn, n=8):
        fn(); fn()
        start = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - start) / n

    t_bare, t_step = timed(bare), timed(step)
    print(f"per step: bare forward+backward {t_bare:.3f} s, trainer {t_step:.3f} s, ratio {t_step / t_bare:.2f}")
    assert t_step / t_bare < 2.0


def test_training_raises_the_margin(setup):
    path, _, ref, tok, rows = setup
    policy, _ = tiny.load(path)
    ours = trainer.PreferenceTrainer(policy, tok, plugins.dpo(0.5), reference_of(ref),
                                     trainer.TrainConfig(learning_rate=2e-4, epochs=2, batch_size=16, log_every=2, progress=False))
    history = ours.train(rows)
    first, last = history.records[0], history.records[-1]
    assert last["margin"] > first["margin"] and last["accuracy"] >= first["accuracy"]
    assert last["update"] == 8 and last["lr"] == pytest.approx(0.0, abs=1e-12)
    assert {"loss", "margin", "accuracy", "lr"} <= set(last)


def test_cosine_schedule():
    values = [trainer.cosine_with_warmup(s, 20, 0.1) for s in range(20)]
    assert values[0] == 0.5 and values[1] == 1.0 and values[-1] < 0.01
    assert all(b <= a for a, b in zip(values[1:], values[2:]))
