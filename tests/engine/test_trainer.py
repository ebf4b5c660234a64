"""The lean trainer: TRL's DPO loss exactly, a step cost near a bare forward+backward, and it learns."""

import pytest
import torch
from helpers import perturb_lora_b, perturbed_policy, plain_rows, reference_of

from prefalign_lite.engine import losses, models, trainer
from prefalign_lite.world import tiny


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
    ours = trainer.PreferenceTrainer(policy, tok, losses.Dpo(0.1), reference_of(ref),
                                     trainer.TrainConfig(max_length=64, progress=False))
    with torch.no_grad():
        x = ours.step_inputs(rows[:8], 0, 1)
        our_loss = ours.objective(x)[0].mean().item()
    print(f"DPO loss on one batch: TRL {trl_loss:.6f}, ours {our_loss:.6f}")
    assert our_loss == pytest.approx(trl_loss, abs=1e-5)
    assert abs(our_loss - 0.693147) > 1e-3  # policy differs from reference: not a trivial log 2


def test_training_raises_the_margin(setup):
    path, _, ref, tok, rows = setup
    policy, _ = models.load_pretrained(path)
    ours = trainer.PreferenceTrainer(policy, tok, losses.Dpo(0.5), reference_of(ref),
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


def test_engine_switches_follow_the_device_and_checkpointing_changes_nothing(setup):
    """Activation checkpointing (non-reentrant) on a frozen 4-bit base with a LoRA adapter gives the
    same loss and adapter gradients as without; on a CPU both switches default to off."""
    from prefalign_lite.engine import models

    path, _, _, tok, rows = setup
    it = models.IterateAdapters(models.load_base(path, four_bit=True), models.LoraSettings(r=4, alpha=8))
    it.create(1)
    perturb_lora_b(it.model)
    grads = {}
    for checkpointing in (False, True):
        run = trainer.PreferenceTrainer(it.model, tok, losses.Dpo(0.1), lambda: it.use(None),
                                        trainer.TrainConfig(progress=False, gradient_checkpointing=checkpointing))
        assert run.checkpointing is checkpointing and run.bf16 is False
        it.model.train()
        with trainer.activation_checkpointing(it.model, checkpointing):
            assert it.model.get_base_model().model.layers[0].gradient_checkpointing is checkpointing
            loss = run.objective(run.step_inputs(rows[:8], 0, 1))[0].mean()
            loss.backward()
        assert it.model.get_base_model().model.layers[0].gradient_checkpointing is False  # restored
        assert not getattr(it.model.get_base_model(), "_require_grads_hooks", None)  # no hook left behind
        grads[checkpointing] = (loss.item(), [p.grad.clone() for p in it.model.parameters() if p.requires_grad])
        it.model.zero_grad()
    assert grads[True][0] == pytest.approx(grads[False][0], abs=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads[True][1], grads[False][1]))
    assert any(g.abs().sum() > 0 for g in grads[True][1])


def test_the_gpu_path_runs_on_a_cpu(setup):
    """What a GPU switches on (bf16 autocast, activation checkpointing, several logit chunks each
    recomputed in the backward) forced on a CPU with SPA's objective: it trains, and one step's
    loss and extrapolated log-probs stay near the float32 path's."""
    from prefalign_lite.engine import models

    path, _, _, tok, rows = setup
    it = models.IterateAdapters(models.load_base(path, four_bit=True), models.LoraSettings(r=4, alpha=8))
    it.create(1)
    spa = losses.SpaRefined(beta=0.1, warmup_fraction=0.0, lam=0.5)
    fast = trainer.TrainConfig(batch_size=16, log_every=1, progress=False, bf16=True, gradient_checkpointing=True,
                               logit_chunk_elements=200)
    run = trainer.PreferenceTrainer(it.model, tok, spa, lambda: it.use(None), fast)
    plain = trainer.PreferenceTrainer(it.model, tok, spa, lambda: it.use(None),
                                      trainer.TrainConfig(batch_size=16, progress=False))
    it.model.train()
    with torch.no_grad():
        x16, x32 = run.step_inputs(rows[:16], 0, 1), plain.step_inputs(rows[:16], 0, 1)
    assert (x16.ext_w - x32.ext_w).abs().max() < 0.1 and (x16.pi_w - x32.pi_w).abs().max() < 0.1
    history = run.train(rows[:32])
    assert history.pairs == 32 and len(history.records) == 2
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in history.records)


def test_training_after_cpu_sampling_on_a_4bit_model_with_biases():
    """bitsandbytes' CPU backend re-lays 4-bit weights out on an eval-mode pass (avx512-bf16
    machines) unless told not to (models.load_base does); training on that layout failed for
    biased layers (Qwen2's q/k/v). The trainer undoes it first."""
    import dataclasses

    from prefalign_lite.bench import shapes as bench_shapes
    from prefalign_lite.engine import models

    shape = bench_shapes.get_shape("tiny-qwen2-152k")
    shape = dataclasses.replace(shape, config={**shape.config, "vocab_size": 256})
    it = models.IterateAdapters(bench_shapes.random_base(shape, torch.device("cpu")), models.LoraSettings(r=4, alpha=8))
    it.create(1)
    layer = it.model.get_base_model().model.layers[0].self_attn.q_proj
    assert layer.base_layer.bias is not None
    from bitsandbytes.functional import has_avx512bf16

    for module in it.model.modules():  # a base loaded outside models.load_base keeps bitsandbytes' default
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = bool(has_avx512bf16())
    it.model.eval()
    with torch.no_grad():
        it.model(torch.ones(2, 6, dtype=torch.long))  # what sampling does
    packed = getattr(layer.base_layer.weight.quant_state, "packing_format_for_cpu", False)
    rows = bench_shapes.random_rows(4, 6, 4, 256)
    history = trainer.PreferenceTrainer(it.model, None, losses.Dpo(0.1), lambda: it.use(None),
                                        trainer.TrainConfig(batch_size=2, max_length=10, progress=False)).train(rows)
    assert history.pairs == 4 and torch.isfinite(torch.tensor(history.last("loss")))
    assert not getattr(layer.base_layer.weight.quant_state, "packing_format_for_cpu", False)
    print(f"weights were in the CPU inference layout before training: {packed}")
