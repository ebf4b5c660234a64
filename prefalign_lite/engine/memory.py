"""A memory model of the engine: for any model shape and batch, each component of peak memory in
each phase of a run, from the architecture alone (no GPU needed). ``python -m prefalign_lite bench
--estimate`` prints it; ``tests/bench/test_memory_estimate.py`` holds its activation terms to tensors
tracked on a CPU (:mod:`prefalign_lite.bench.tracking`).

Each phase is an :class:`Estimate`: components in bytes, some alive throughout (``fixed``), others
at different moments (``alternatives``); its peak is the fixed ones plus the largest moment.
``a`` = bytes of an activation (2 under bf16 autocast); ``N`` = tokens in the batch.

* **training step** (reference forward, policy forward and backward, checkpointing on): throughout,
  ``weights`` (4-bit linears at 0.516 B/param with double quantisation, the rest in bf16),
  ``lora_and_optimizer`` (the trained adapter's fp32 weights, gradients and AdamW's two moments,
  16 B/param; every other resident adapter 4 B/param), ``checkpoint_boundaries`` (each layer's
  input, ``layers * N * hidden * a``) and ``final_norm`` (the last norm's saved float32 input, the
  completion positions' hidden states and their gradient); then either ``logit_chunk`` (while the
  head is differentiated: four float32 copies of one chunk of logits, 16 B per logit) or
  ``layer_recompute`` + ``layer_backward`` (one layer's saved activations while it is recomputed,
  :func:`layer_saved_bytes_per_token`, and the larger of its backward's gradients and a 4-bit
  weight dequantised for a matmul);
* **log-prob pass** (no gradient): weights and resident adapters; then the residual stream with one
  layer's working set (:func:`layer_forward_bytes_per_token`), or the head's chunk (:func:`pass_logit_bytes`);
* **sampling**: weights, adapters (or a dense merged copy), the key/value cache of every sequence
  (``2 * layers * kv_heads * head_dim * a`` per token of prompt + new tokens); then the prefill's
  working set of one layer over the prompts, or the last logits with the sampler's copies;
* **reward scoring**: the reward model's weights and one layer's forward working set over its batch.

Not counted: the CUDA context and allocator slack (about 0.5-1 GB on a GPU), the dataset and
tokenizer on the host.
"""
from __future__ import annotations

from dataclasses import dataclass

NF4_BYTES_PER_PARAM = 0.5 + 1 / 64 + 4 / (64 * 256)   # 4-bit values, 8-bit absmax per 64, fp32 absmax per 256 blocks
GB = 1e9


@dataclass(frozen=True)
class Dims:
    """The sizes of a decoder-only transformer (Llama, Mistral, Qwen2/3 families)."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool

    @classmethod
    def from_config(cls, config) -> "Dims":
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        heads = text.num_attention_heads
        return cls(hidden=text.hidden_size, layers=text.num_hidden_layers, heads=heads,
                   kv_heads=getattr(text, "num_key_value_heads", None) or heads,
                   head_dim=getattr(text, "head_dim", None) or text.hidden_size // heads,
                   intermediate=text.intermediate_size, vocab=text.vocab_size,
                   tied=bool(getattr(text, "tie_word_embeddings", False)))

    @property
    def q_width(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_width(self) -> int:
        return self.kv_heads * self.head_dim

    def projections(self) -> dict[str, tuple[int, int]]:
        """``name: (in, out)`` of each linear layer of one decoder layer."""
        h, i = self.hidden, self.intermediate
        return {"q_proj": (h, self.q_width), "k_proj": (h, self.kv_width), "v_proj": (h, self.kv_width),
                "o_proj": (self.q_width, h), "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    def linear_params(self) -> int:
        return self.layers * sum(a * b for a, b in self.projections().values())

    def other_params(self) -> int:
        """Embedding (and an untied head), norms: the parameters bitsandbytes leaves unquantised."""
        return self.vocab * self.hidden * (1 if self.tied else 2) + (2 * self.layers + 1) * self.hidden

    def lora_params(self, r: int, targets=None) -> int:
        chosen = self.projections() if targets is None else {k: v for k, v in self.projections().items() if k in targets}
        return self.layers * sum(r * (a + b) for a, b in chosen.values())


def kv_cache_bytes_per_token(config, dtype_bytes: int = 2) -> int:
    """Bytes of key/value cache one token takes: ``2 * layers * kv_heads * head_dim * dtype_bytes``."""
    d = Dims.from_config(config)
    return 2 * d.layers * d.kv_width * dtype_bytes


def weights_bytes(d: Dims, four_bit: bool, dtype_bytes: int = 2) -> float:
    linear = d.linear_params() * (NF4_BYTES_PER_PARAM if four_bit else dtype_bytes)
    return linear + d.other_params() * dtype_bytes


def layer_saved_bytes_per_token(d: Dims, r: int = 16, a: int = 2, expand_kv: bool = True) -> float:
    """What autograd keeps of one decoder layer's forward, per token, for its backward:

    * each RMSNorm's float32 input and its ``rsqrt`` (2 x (4 hidden + 4));
    * each norm's output, the input of the LoRA ``A`` matrices (2 x ``a`` hidden);
    * attention's query, key and value after RoPE (keys and values repeated to every query head
      when a padding mask keeps sdpa from grouped-query attention, ``expand_kv``), its output and its
      float32 log-sum-exp per head, and the output again as ``o_proj``'s contiguous input;
    * the MLP's gate, up, SiLU(gate) and their product (4 x ``a`` intermediate);
    * the rank-``r`` activations of the seven LoRA adapters (7 x ``a`` r).
    The 4-bit base matmuls keep no input (their weight is frozen)."""
    kv = d.q_width if expand_kv else d.kv_width
    norms = 2 * (4 * d.hidden + 4) + 2 * a * d.hidden
    attention = a * (d.q_width + 2 * kv) + a * d.q_width + 4 * d.heads + a * d.q_width
    return norms + attention + 4 * a * d.intermediate + 7 * a * r


def layer_backward_bytes_per_token(d: Dims, a: int = 2) -> float:
    """The gradients alive at once while one layer is differentiated, per token: the incoming and
    outgoing residual gradients (2 ``a`` hidden) and the MLP's intermediate gradients (2 ``a``
    intermediate, the largest step)."""
    return 2 * a * d.hidden + 2 * a * d.intermediate


def dequantized_weight_bytes(d: Dims, four_bit: bool, a: int = 2) -> float:
    """A 4-bit linear layer's weight dequantised for one matmul (bitsandbytes does so for every
    batch of more than a few rows): the largest projection, in the compute dtype."""
    return max(i * o for i, o in d.projections().values()) * a if four_bit else 0.0


def layer_forward_bytes_per_token(d: Dims, a: int = 2) -> float:
    """One layer's peak working set per token in a pass without gradients (prefill, log-probs,
    scoring): residual in and out, a norm's float32 copy, and four MLP-wide tensors alive at once
    (gate, up, SiLU(gate) and their product, as tracked on a CPU)."""
    return 2 * a * d.hidden + 4 * d.hidden + 4 * a * d.intermediate


# Bytes per logit at the head: in a training step's backward four float32 (rows, vocab) tensors are
# alive at once (the chunk's float32 logits, and log-sum-exp's backward: x - lse, its exp, the
# product with the incoming gradient); a pass without gradients holds the logits in the compute
# dtype and, under bf16, their float32 copy (:func:`pass_logit_bytes`).
TRAIN_LOGIT_BYTES = 16


def pass_logit_bytes(a: int = 2) -> int:
    """Bytes per logit of a no-gradient pass: ``a`` for the logits, 4 more for a float32 copy when
    they are not float32 already (6 under bf16, 4 in float32; measured on a CPU)."""
    return a + (4 if a < 4 else 0)


@dataclass(frozen=True)
class Estimate:
    """One phase: each component in bytes and the peak, ``fixed + max(alternatives)``: the fixed
    components are alive throughout, the alternatives at different moments (the head's chunk while
    the head is differentiated, a layer's recomputation while the layers are)."""

    components: dict
    fixed: tuple[str, ...]
    alternatives: tuple[tuple[str, ...], ...]

    @property
    def peak(self) -> float:
        moments = [sum(self.components[k] for k in group) for group in self.alternatives] or [0.0]
        return sum(self.components[k] for k in self.fixed) + max(moments)

    @property
    def rule(self) -> str:
        alt = " | ".join(" + ".join(group) for group in self.alternatives)
        return " + ".join(self.fixed) + (f" + max({alt})" if self.alternatives else "")


def training_step(d: Dims, pairs: int, seq_len: int, completion_tokens: int, *, four_bit: bool = True, r: int = 16,
                  adapters: int = 1, chunk_elements: int = 1 << 25, a: int = 2, expand_kv: bool = True,
                  checkpointing: bool = True) -> Estimate:
    """One training step on ``pairs`` pairs of ``seq_len`` tokens of which ``completion_tokens`` are
    completion (per row); its peak is while the head's last chunk or a recomputed layer is
    differentiated."""
    n = 2 * pairs * seq_len
    completion = 2 * pairs * completion_tokens
    lora = d.lora_params(r)
    saved = layer_saved_bytes_per_token(d, r, a, expand_kv) * n
    parts = {"weights": weights_bytes(d, four_bit, a),
             "lora_and_optimizer": lora * 16 + (adapters - 1) * lora * 4,
             "checkpoint_boundaries": d.layers * n * d.hidden * a if checkpointing else (d.layers - 1) * saved,
             "final_norm": n * (4 * d.hidden + 4) + 2 * completion * d.hidden * a,
             "layer_recompute": saved,
             "layer_backward": max(layer_backward_bytes_per_token(d, a) * n, dequantized_weight_bytes(d, four_bit, a)),
             "logit_chunk": TRAIN_LOGIT_BYTES * min(chunk_elements, max(1, completion) * d.vocab)}
    return Estimate(parts, ("weights", "lora_and_optimizer", "checkpoint_boundaries", "final_norm"),
                    (("logit_chunk",), ("layer_recompute", "layer_backward")))


def logprob_pass(d: Dims, rows: int, seq_len: int, completion_tokens: int, *, four_bit: bool = True, r: int = 16,
                 adapters: int = 1, chunk_elements: int = 1 << 25, a: int = 2) -> Estimate:
    """One no-gradient pass over ``rows`` sequences (a judge's, the KL's, the augmented log-probs)."""
    n = rows * seq_len
    parts = {"weights": weights_bytes(d, four_bit, a), "adapters": adapters * d.lora_params(r) * 4,
             "residual_stream": n * d.hidden * a,
             "layer_forward": layer_forward_bytes_per_token(d, a) * n + dequantized_weight_bytes(d, four_bit, a),
             "completion_hidden": rows * completion_tokens * d.hidden * a,
             "logit_chunk": pass_logit_bytes(a) * min(chunk_elements, max(1, rows * completion_tokens) * d.vocab)}
    return Estimate(parts, ("weights", "adapters"), (("residual_stream", "layer_forward"),
                                                     ("completion_hidden", "logit_chunk")))


def sampling(d: Dims, batch: int, prompt_tokens: int, new_tokens: int, *, four_bit: bool = True, r: int = 16,
             adapters: int = 1, merged: bool = False, a: int = 2) -> Estimate:
    """One ``generate`` call: the cache of ``batch`` sequences of ``prompt_tokens + new_tokens``, the
    prefill over the prompts, the last position's logits (float32, with the sampler's sorted and
    softmaxed copies: 4 x 4 B per logit)."""
    parts = {"weights": weights_bytes(d, four_bit, a), "adapters": adapters * d.lora_params(r) * 4,
             "kv_cache": 2 * d.layers * d.kv_width * a * batch * (prompt_tokens + new_tokens),
             "prefill": layer_forward_bytes_per_token(d, a) * batch * prompt_tokens
             + dequantized_weight_bytes(d, four_bit, a),
             "logits": 16 * batch * d.vocab}
    fixed = ("weights", "adapters", "kv_cache")
    if merged:
        parts["merged_copy"] = (d.linear_params() + d.other_params()) * a
        fixed += ("merged_copy",)
    return Estimate(parts, fixed, (("prefill",), ("logits",)))


def reward_scoring(d: Dims, batch: int, seq_len: int, a: int = 2, beside: float = 0.0) -> Estimate:
    """Scoring ``batch`` conversations of ``seq_len`` tokens with a reward model of dims ``d`` in
    bf16 (its embedding, no head but the scalar one), with ``beside`` bytes of the policy (its base
    and adapters) alive on the device too."""
    n = batch * seq_len
    weights = d.linear_params() * a + (d.vocab * d.hidden + (2 * d.layers + 1) * d.hidden) * a
    parts = {"reward_model": weights, "residual_stream": n * d.hidden * a,
             "layer_forward": layer_forward_bytes_per_token(d, a) * n}
    fixed = ("reward_model", "residual_stream", "layer_forward")
    if beside:
        parts["policy_beside"] = beside
        fixed += ("policy_beside",)
    return Estimate(parts, fixed, ())


def merged_copy_bytes(config, a: int = 2) -> float:
    """A dense copy of the model in ``a``-byte weights (the merged sampling copy)."""
    d = Dims.from_config(config)
    return (d.linear_params() + d.other_params()) * a


def sampling_bytes_per_sequence(config, prompt_tokens: int, new_tokens: int, a: int = 2) -> float:
    """What one more sequence adds to a ``generate`` call: its cache and its share of the prefill."""
    d = Dims.from_config(config)
    return 2 * d.layers * d.kv_width * a * (prompt_tokens + new_tokens) + layer_forward_bytes_per_token(d, a) * prompt_tokens


def activation_peak(e: Estimate) -> float:
    """The peak without weights, adapters and optimizer state: what a step adds (the part the CPU
    check holds to tracked tensors)."""
    static = {"weights", "lora_and_optimizer", "adapters", "reward_model", "merged_copy", "policy_beside"}
    trimmed = Estimate({k: (0.0 if k in static else v) for k, v in e.components.items()}, e.fixed, e.alternatives)
    return trimmed.peak
