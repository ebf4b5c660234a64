"""The memory model (:mod:`prefalign_lite.engine.memory`) against tensors tracked on a CPU
(:class:`prefalign_lite.bench.tracking.LiveBytes`, a ``TorchDispatchMode`` counting live storages),
at a small real architecture (Qwen2: GQA, tied embeddings), in float32 (the kit's CPU path:
``a = 4``), checkpointing forced on.

Stated tolerance: each phase's activation peak (the peak less weights, adapters and optimizer
state) within 30 % of the tracked peak where a decoder layer's working set is the largest moment
(logit chunk small), within 10 % where the logit chunk is. Measured (estimate against tracked):
training step +22 % and +1 %, log-prob pass -0.4 % and -0.1 %, sampling (cache and prefill) -6 %
and +18 %, reward scoring -2 % and -3 %. And the vocabulary test of issue 19: with Qwen2.5's
151,936-id vocabulary no tensor whose last dimension is the vocabulary grows past the logit chunk
during a training step or a log-prob pass. About 30 s.
"""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from prefalign_lite.bench.shapes import Shape, build_config, random_base, random_rows
from prefalign_lite.bench.tracking import LiveBytes
from prefalign_lite.engine import generate, logps, losses, memory, models, trainer
from prefalign_lite.engine.reward_model import last_token_scores

ROOT = Path(__file__).resolve().parents[2]
SMALL = Shape("qwen2", dict(hidden_size=256, intermediate_size=704, num_hidden_layers=3, num_attention_heads=4,
                            num_key_value_heads=2, vocab_size=8192, tie_word_embeddings=True,
                            max_position_embeddings=1024),
              pairs=4, prompt_tokens=96, completion_tokens=96)
VOCAB_152K = Shape("qwen2", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                 num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True,
                                 max_position_embeddings=1024),
                   pairs=2, prompt_tokens=48, completion_tokens=48)


def _tracked(shape: Shape, chunk: int):
    """Tracked (training step, log-prob pass) of a fresh LoRA iterate on a random float32 base."""
    torch.manual_seed(0)
    vocab = shape.config["vocab_size"]
    iterates = models.IterateAdapters(random_base(shape, torch.device("cpu"), four_bit=False, dtype=torch.float32))
    iterates.create(1)
    rows = random_rows(shape.pairs, shape.prompt_tokens, shape.completion_tokens, vocab)
    cfg = trainer.TrainConfig(max_length=shape.max_length, progress=False, bf16=False, gradient_checkpointing=True,
                              logit_chunk_elements=chunk)
    tr = trainer.PreferenceTrainer(iterates.model, None, losses.Dpo(0.1), lambda: iterates.use(None), cfg)
    batch = tr.encode(rows)
    iterates.model.train()
    with trainer.activation_checkpointing(iterates.model, True), LiveBytes(watch_last_dims=(vocab,)) as step:
        x = tr.batch_inputs(batch, rows, 0, 1)
        tr.objective(x)[0].mean().backward()
    iterates.model.eval()
    with torch.no_grad(), LiveBytes(watch_last_dims=(vocab,)) as pass_:
        logps.forward_logps(iterates.model, batch, chunk_elements=chunk)
    return step, pass_


def _estimated(shape: Shape, chunk: int):
    d = memory.Dims.from_config(build_config(shape))
    seq = shape.prompt_tokens + shape.completion_tokens
    step = memory.training_step(d, shape.pairs, seq, shape.completion_tokens, four_bit=False, chunk_elements=chunk, a=4)
    pass_ = memory.logprob_pass(d, 2 * shape.pairs, seq, shape.completion_tokens, four_bit=False,
                                chunk_elements=chunk, a=4)
    return memory.activation_peak(step), memory.activation_peak(pass_)


@pytest.mark.parametrize("chunk, tolerance", [(1 << 16, 0.30), (1 << 25, 0.10)], ids=["layers", "logit-chunk"])
def test_activation_terms_match_tensors_tracked_on_cpu(chunk, tolerance):
    step, pass_ = _tracked(SMALL, chunk)
    est_step, est_pass = _estimated(SMALL, chunk)
    assert est_step == pytest.approx(step.peak, rel=tolerance), (est_step / 1e6, step.peak / 1e6)
    assert est_pass == pytest.approx(pass_.peak, rel=tolerance), (est_pass / 1e6, pass_.peak / 1e6)


@pytest.mark.parametrize("batch, prompt, new", [(16, 128, 16), (4, 32, 64)], ids=["prefill", "cache"])
def test_sampling_terms_match_tensors_tracked_on_cpu(batch, prompt, new):
    torch.manual_seed(0)
    iterates = models.IterateAdapters(random_base(SMALL, torch.device("cpu"), four_bit=False, dtype=torch.float32))
    iterates.create(1)
    ids = torch.randint(1, SMALL.config["vocab_size"], (batch, prompt), generator=torch.Generator().manual_seed(0))
    with iterates.use(1) as m, LiveBytes() as tracked:
        generate.generate_ids(m, ids, torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new, pad_token_id=0,
                              eos_token_id=None)
    d = memory.Dims.from_config(build_config(SMALL))
    estimated = memory.activation_peak(memory.sampling(d, batch, prompt, new, four_bit=False, a=4))
    assert estimated == pytest.approx(tracked.peak, rel=0.30), (estimated / 1e6, tracked.peak / 1e6)


@pytest.mark.parametrize("batch, tokens", [(16, 192), (4, 512)])
def test_reward_scoring_terms_match_tensors_tracked_on_cpu(batch, tokens):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(build_config(SMALL, num_labels=1)).eval()
    ids = torch.randint(1, SMALL.config["vocab_size"], (batch, tokens), generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), LiveBytes() as tracked:
        last_token_scores(model, ids, torch.ones_like(ids))
    d = memory.Dims.from_config(build_config(SMALL))
    estimated = memory.activation_peak(memory.reward_scoring(d, batch, tokens, a=4))
    assert estimated == pytest.approx(tracked.peak, rel=0.30), (estimated / 1e6, tracked.peak / 1e6)


def test_no_vocabulary_sized_tensor_grows_past_the_chunk():
    """The training step never builds the (2B, T, V) logits: at 151,936 ids the largest tensor with
    the vocabulary as its last dimension is one chunk, in the step and in the log-prob pass."""
    chunk = 1 << 22   # 27 completion positions of 151,936 logits; the batch has 4 x 48 = 192
    step, pass_ = _tracked(VOCAB_152K, chunk)
    for tracked in (step, pass_):
        elements, shape, _ = tracked.largest(151936)
        assert elements <= chunk and shape[0] < 4 * VOCAB_152K.completion_tokens, shape


def test_bench_estimate_prints_every_component_of_every_phase():
    done = subprocess.run([sys.executable, "-m", "prefalign_lite", "bench", "--estimate"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for title in ("config mistral7b-sft-4bit", "config qwen0.5b-4bit", "shape mistral-7b at 4 pairs x 1024 tokens",
                  "shape qwen2.5-0.5b at 8 pairs x 512 tokens"):
        assert f"**{title}" in out
    for component in ("weights", "lora and optimizer", "checkpoint boundaries", "layer recompute", "logit chunk",
                      "kv cache", "prefill", "reward model"):
        assert f"| {component} |" in out, component
    one = subprocess.run([sys.executable, "-m", "prefalign_lite", "bench", "--estimate", "--config",
                          "configs/mistral7b-sft-4bit.yaml"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert one.returncode == 0 and "| reward scoring | reward model |" in one.stdout


def test_the_merged_copy_term_is_the_dense_copys_tensors():
    """The merged sampling copy the estimate adds to sampling (and the session reserves when it sizes
    the batch) against the storages of a real merged copy of the small Qwen2, in float32 and bf16."""
    torch.manual_seed(0)
    iterates = models.IterateAdapters(random_base(SMALL, torch.device("cpu"), four_bit=False, dtype=torch.float32))
    iterates.create(1)
    config = build_config(SMALL)
    for dtype, a in ((torch.float32, 4), (torch.bfloat16, 2)):
        with LiveBytes() as tracked:
            copy = iterates.merged(1, dtype=dtype)
        # what stays alive once built is the copy (the term); the build's float32 temporaries (one
        # weight at a time, the embedding the largest) are gone before sampling starts
        assert tracked.live == pytest.approx(memory.merged_copy_bytes(config, a), rel=0.02)
        assert sum(p.numel() * p.element_size() for p in copy.parameters()) == pytest.approx(
            memory.merged_copy_bytes(config, a), rel=0.02)
        assert tracked.peak - tracked.live <= 4 * config.vocab_size * config.hidden_size * 1.05
        del copy


def test_the_7b_configs_phases_with_every_term_alive_fit_their_cards():
    """Every phase of the 7B config stays under 40 GB with the terms that are alive together (the
    merged copy while sampling, the policy beside the reward model), at the batches the run uses:
    the log-prob and reward batches within their token budgets, the sampling batch a 40 GB card gives."""
    from prefalign_lite.bench import estimate as E
    from prefalign_lite.engine.logps import LOGPROB_TOKEN_BUDGET
    from prefalign_lite.engine.reward_model import REWARD_TOKEN_BUDGET

    for name, card in (("mistral7b-sft-4bit", 40), ("mistral7b-sft-4bit-80gb", 80)):
        peaks = E.peak_by_phase(E.preset_estimate(name))
        assert set(peaks) == {"training step", "log-prob pass", "sampling", "reward scoring"}
        assert max(peaks.values()) <= (40 if card == 40 else 0.7 * card), (name, peaks)
        assert "merged_copy" in E.preset_estimate(name)["sampling"].components
        assert "policy_beside" in E.preset_estimate(name)["reward scoring"].components
    batches = E.preset_batches(E.PRESETS["mistral7b-sft-4bit"])
    assert batches["logprob_rows"] * 1024 <= LOGPROB_TOKEN_BUDGET and batches["reward_batch"] * 4096 <= REWARD_TOKEN_BUDGET
    assert batches["sample_batch"] == 64 and E.preset_batches(E.PRESETS["mistral7b-sft-4bit-80gb"])["sample_batch"] == 128


def test_log_prob_passes_keep_to_their_token_budget_and_give_the_same_numbers():
    """No-gradient log-prob passes close a batch before it would pass its token budget (padded rows x
    width; chosen and rejected stacked), so a 7B judging pass is sized in tokens, not pairs."""
    from prefalign_lite.engine import encoding

    assert [len(b) for b in encoding.token_batches([10, 10, 30, 10, 10], 4, 60)] == [2, 2, 1]
    assert [len(b) for b in encoding.token_batches([10] * 9, 4, None)] == [4, 4, 1]
    torch.manual_seed(0)
    base = random_base(SMALL, torch.device("cpu"), four_bit=False, dtype=torch.float32)
    rows = random_rows(6, 40, 20, SMALL.config["vocab_size"])
    calls = []
    hook = base.get_input_embeddings().register_forward_pre_hook(lambda m, a: calls.append(tuple(a[0].shape)))
    try:
        budgeted = logps.pair_logps(base, None, rows, token_budget=2 * 2 * 60)
        budgeted_calls, calls[:] = list(calls), []
        whole = logps.pair_logps(base, None, rows)
    finally:
        hook.remove()
    assert budgeted_calls == [(4, 60)] * 3 and calls == [(12, 60)]
    assert torch.allclose(budgeted[0], whole[0], atol=1e-4) and torch.allclose(budgeted[1], whole[1], atol=1e-4)
