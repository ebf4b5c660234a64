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
