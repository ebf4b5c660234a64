"""Completion log-probs and iterates as LoRA adapters on one (4-bit) base."""
import pytest
import torch

from helpers import perturb_lora_b
from prefalign_lite.engine import encoding, logps, models
from prefalign_lite.world import tiny


@pytest.fixture(scope="module")
def sft():
    path = tiny.sft_model_path()
    return path, *models.load_pretrained(path)


def test_pair_batch_masks_prompt_and_padding(sft):
    _, _, tok = sft
    batch = encoding.pair_batch(tok, ["add 1 2", "sort 3 1 2"], ["3", "1 2 3"], ["4 4", "3"])
    assert batch.input_ids.shape[0] == 4 and batch.n_pairs == 2
    completion = [tok.convert_ids_to_tokens([i for i, l in zip(ids, lab) if l != -100])
                  for ids, lab in zip(batch.input_ids.tolist(), batch.labels.tolist())]
    assert completion == [["3", "<eos>"], ["1", "2", "3", "<eos>"], ["4", "4", "<eos>"], ["3", "<eos>"]]
    assert (batch.attention_mask.sum(-1) == (batch.input_ids != tok.pad_token_id).sum(-1)).all()
    aug = encoding.pair_batch(tok, ["add 1 2"], ["3"], ["4"], prefix="best")
    assert tok.convert_ids_to_tokens(aug.input_ids[0].tolist())[:3] == ["<|user|>", "best", "add"]


def test_batched_logps_equal_one_by_one_and_ignore_padding(sft):
    _, model, tok = sft
    prompts, chosen, rejected = ["add 1 2", "sort 3 1 2 5 4"], ["3", "1 2 3 4 5"], ["4 4", "3"]
    batch = encoding.pair_batch(tok, prompts, chosen, rejected)
    with torch.no_grad():
        fwd = logps.forward_pass(model, batch)
        together, lengths = fwd.logps, fwd.lengths
        alone = torch.cat([logps.forward_logps(model, encoding.pair_batch(tok, [p], [c], [r]))
                           for p, c, r in zip(prompts, chosen, rejected)]).view(2, 2).T.reshape(-1)
    assert torch.allclose(together, alone, atol=1e-5)
    assert lengths.tolist() == [2, 6, 3, 2]
    # Eq. 12 with lambda = 0 is the plain log-prob.
    with torch.no_grad():
        logits = logps.forward_pass(model, batch, full_logits=True).logits
    assert torch.allclose(logps.extrapolated_pair_logps(logits, logits * 0.5, batch.labels, 0.0), together, atol=1e-5)


def test_iterates_as_adapters_on_one_4bit_base(sft, tmp_path):
    path, model, tok = sft
    base = models.load_base(path, four_bit=True)
    assert "Linear4bit" in type(base.model.layers[0].self_attn.q_proj).__name__
    it = models.IterateAdapters(base, models.LoraSettings(r=4, alpha=8))
    it.create(1)
    batch = encoding.pair_batch(tok, ["add 1 2"], ["3"], ["4"])
    with it.use(None) as m:
        init = logps.forward_logps(m, batch)
    with it.use(1) as m:
        fresh = logps.forward_logps(m, batch)
    assert torch.allclose(init, fresh)  # a new adapter starts at the base (LoRA B = 0)
    trainable = [n for n, p in it.model.named_parameters() if p.requires_grad]
    assert trainable and all(".iter1." in n for n in trainable)
    # train iterate 1 a little, then make iterate 2 from it
    opt = torch.optim.Adam([p for p in it.model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        loss = -logps.forward_logps(it.model, batch)[0]
        opt.zero_grad(); loss.backward(); opt.step()
    with it.use(1) as m:
        after1 = logps.forward_logps(m, batch)
    assert after1[0] > init[0]
    it.create(2, init_from=1)
    with it.use(2) as m:
        assert torch.allclose(logps.forward_logps(m, batch), after1)
    with it.use(None) as m:
        assert torch.allclose(logps.forward_logps(m, batch), init)  # the base never moved
    assert sorted(it.names) == ["iter1", "iter2"]
    # save and resume
    saved = it.save(1, tmp_path)
    assert (saved / "adapter_config.json").exists()
    again = models.IterateAdapters(models.load_base(path, four_bit=True), models.LoraSettings(r=4, alpha=8))
    again.load(1, tmp_path)
    with again.use(1) as m:
        assert torch.allclose(logps.forward_logps(m, batch), after1, atol=1e-5)


# ---- the memory-light log-prob path -------------------------------------------------------------

def _policy_and_ref(dtype):
    """The SFT model and a perturbed copy, in ``dtype``."""
    path = tiny.sft_model_path()
    ref, tok = models.load_pretrained(path, dtype=dtype)
    policy, _ = models.load_pretrained(path, dtype=dtype)
    torch.manual_seed(3)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return policy, ref, tok


PROMPTS, CHOSEN, REJECTED = ["add 1 2", "sort 3 1 2 5 4", "reverse c a b"], ["3", "1 2 3 4 5", "b a c"], ["4 4", "3", "c"]


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_chunked_logps_and_gradients_equal_the_full_logits(dtype, tol):
    policy, _, tok = _policy_and_ref(dtype)
    batch = encoding.pair_batch(tok, PROMPTS, CHOSEN, REJECTED)
    fwd = logps.forward_pass(policy, batch, full_logits=True)
    full, lengths, logits = fwd.logps, fwd.lengths, fwd.logits
    assert logits.shape[-1] == policy.config.vocab_size  # the old path really built (2B, T, V)
    full.sum().backward()
    want = {n: p.grad.clone() for n, p in policy.named_parameters()}
    policy.zero_grad()
    vocab = policy.config.vocab_size
    fwd = logps.forward_pass(policy, batch, chunk_elements=3 * vocab)
    chunked, lengths2, states = fwd.logps, fwd.lengths, fwd.states
    n_tokens = int(lengths.sum())
    assert states.hidden.shape[0] == n_tokens and len(logps._chunks(states, 3 * vocab)) == -(-n_tokens // 3) > 1
    chunked.sum().backward()
    assert torch.equal(lengths, lengths2)
    assert (chunked - full).abs().max().item() <= tol
    worst = max((p.grad - want[n]).abs().max().item() for n, p in policy.named_parameters())
    assert worst <= 10 * tol


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_chunked_extrapolated_logps_equal_spa_eq12_on_full_logits(dtype, tol):
    policy, ref, tok = _policy_and_ref(dtype)
    batch = encoding.pair_batch(tok, PROMPTS, CHOSEN, REJECTED)
    vocab = policy.config.vocab_size
    with torch.no_grad():
        pol_logits = logps.forward_pass(policy, batch, full_logits=True).logits
        ref_logits = logps.forward_pass(ref, batch, full_logits=True).logits
        pol_states = logps.forward_pass(policy, batch).states
        ref_states = logps.forward_pass(ref, batch).states
    for lam in (0.0, 0.25, 1.0):
        want = logps.extrapolated_pair_logps(pol_logits, ref_logits, batch.labels, lam)
        for chunk in (vocab, 4 * vocab, 10 ** 9):
            got = logps.extrapolated_logps_from_states(pol_states, ref_states, lam, chunk_elements=chunk)
            assert got.dtype == torch.float32 or dtype == torch.float64
            assert (got.to(dtype) - want).abs().max().item() <= tol, (lam, chunk)
    # lambda = 0 is the policy's own log-prob; lambda > 0 moves away from it
    plain = logps.forward_logps(policy, batch)
    assert torch.allclose(logps.extrapolated_logps_from_states(pol_states, ref_states, 0.0), plain, atol=tol)
    assert (logps.extrapolated_logps_from_states(pol_states, ref_states, 1.0) - plain).abs().max() > 1e-3


def test_models_outside_the_hidden_state_path_fall_back_to_full_logits(sft):
    _, model, tok = sft
    batch = encoding.pair_batch(tok, PROMPTS, CHOSEN, REJECTED)
    assert logps.supports_hidden_path(model)
    with torch.no_grad():
        plain = logps.forward_logps(model, batch)
        model.config.final_logit_softcapping = 30.0  # a model that post-processes its logits
        try:
            assert not logps.supports_hidden_path(model)
            fwd = logps.forward_pass(model, batch)
            fallback, extra = fwd.logps, fwd.states
        finally:
            model.config.final_logit_softcapping = None
    assert extra is None and torch.allclose(plain, fallback, atol=1e-5)


# ---- device, merged copy, generation batch ------------------------------------------------------

def test_device_defaults_and_gpu_load_arguments():
    assert models.default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert models.default_dtype("cpu") == torch.float32 and models.default_dtype("cuda") == torch.bfloat16
    cpu = models.base_load_kwargs(True, device="cpu")
    assert "device_map" not in cpu and cpu["quantization_config"].bnb_4bit_compute_dtype == torch.float32
    gpu = models.base_load_kwargs(True, device="cuda:0")  # only builds arguments: no GPU needed
    assert gpu["device_map"] == {"": 0} and gpu["dtype"] == torch.bfloat16
    assert gpu["quantization_config"].bnb_4bit_quant_type == "nf4"


def test_generation_batch_size_follows_the_device():
    from transformers import MistralConfig

    from prefalign_lite.engine import generate

    assert generate.default_batch_size(device="cpu") == 256
    mistral = type("M", (), {"config": MistralConfig(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                                                     num_key_value_heads=8)})()
    assert generate.kv_cache_bytes_per_token(mistral.config) == 131072
    # a sequence of a 340-token prompt and 300 new tokens: 83.9 MB of cache and 50.1 MB of prefill
    per_sequence = 640 * 131072 + 340 * (2 * 2 * 4096 + 4 * 4096 + 4 * 2 * 14336)
    assert per_sequence == 134_021_120
    assert generate.default_batch_size(mistral, "cuda", free_bytes=75e9) == 256  # 0.7 * 75e9 / 134.0 MB = 391
    assert generate.default_batch_size(mistral, "cuda", free_bytes=20e9) == 64   # 0.7 * 20e9 / 134.0 MB = 104
    with pytest.raises(ValueError, match="GB of cache and prefill"):
        generate.default_batch_size(mistral, "cuda", free_bytes=1e7)


def test_merged_copy_equals_the_4bit_iterate(sft):
    path, _, tok = sft
    it = models.IterateAdapters(models.load_base(path, four_bit=True), models.LoraSettings(r=4, alpha=8))
    it.create(1)
    it.create(2)
    perturb_lora_b(it.model)
    batch = encoding.pair_batch(tok, PROMPTS, CHOSEN, REJECTED)
    it.model.train()  # bitsandbytes' CPU backend computes exactly (unpacked weights) in train mode
    with it.use(1) as m:
        want = logps.forward_logps(m, batch)
    exact = it.merged(1, dtype=torch.float32)
    assert not hasattr(exact, "peft_config") and "Linear4bit" not in type(exact.model.layers[0].self_attn.q_proj).__name__
    assert torch.allclose(logps.forward_logps(exact, batch), want, atol=1e-5)
    assert (logps.forward_logps(it.merged(2, dtype=torch.float32), batch) - want).abs().max() > 1e-3
    half = it.merged(1)
    assert half.dtype == torch.bfloat16
    assert torch.allclose(logps.forward_logps(half, batch), want, atol=0.2)
    # the adapters are left as they were: iterate 2 active and the only one training
    assert it.model.active_adapter == "iter2"
    assert all(".iter2." in n for n, p in it.model.named_parameters() if p.requires_grad)


def test_gradients_after_an_eval_pass_equal_those_of_a_fresh_4bit_base():
    """On avx512-bf16 CPUs bitsandbytes re-lays 4-bit weights out on an eval-mode pass (sampling,
    judging) unless told not to; backpropagating through that layout loses the gradient through
    the base layers (the first layer's LoRA gradients came out ~100x too small). ``load_base``
    switches it off; ``unpack_cpu_4bit`` (called by the trainer) is the net for other bases.
    (A random base of the bench's tiny shape: bitsandbytes' re-layout also crashes outright on
    layers whose width is not a multiple of 64, like the 96-wide tiny SFT model's.)"""
    from bitsandbytes.functional import has_avx512bf16

    from prefalign_lite.bench import shapes as bench_shapes

    shape = bench_shapes.get_shape("tiny")
    rows = bench_shapes.random_rows(4, 6, 5, shape.config["vocab_size"])
    batch = encoding.collate(encoding.tokenise_rows(None, rows).pairs, pad_token_id=0)

    def first_layer_grads(eval_pass: bool):
        it = models.IterateAdapters(bench_shapes.random_base(shape, torch.device("cpu")), models.LoraSettings(r=4, alpha=8))
        torch.manual_seed(0)
        it.create(1)
        perturb_lora_b(it.model)
        if eval_pass:
            layers = [m for m in it.model.modules() if hasattr(m, "support_avx512bf16_for_cpu")]
            for m in layers:  # load_base switches the re-layout off; switch it back on to test the net
                m.support_avx512bf16_for_cpu = bool(has_avx512bf16())
            it.model.eval()
            with torch.no_grad():
                it.model(batch.input_ids[:1])
            assert models.unpack_cpu_4bit(it.model) == (len(layers) if has_avx512bf16() else 0)
        it.model.train()
        logps.forward_logps(it.model, batch).sum().backward()
        return {n: p.grad for n, p in it.model.named_parameters() if p.requires_grad and "layers.0." in n}

    fresh, after_eval = first_layer_grads(False), first_layer_grads(True)
    # the round trip through the re-layout keeps the block scales in bfloat16: the weights move a
    # little, so the gradients agree to a few per cent, not bit for bit (without the net: ~1%% of size)
    worst = max(((after_eval[n] - fresh[n]).norm() / fresh[n].norm()).item() for n in fresh)
    print(f"first-layer LoRA gradients after an eval pass: worst relative error {worst:.4f}")
    assert worst < 0.05 and min(g.norm() for g in fresh.values()) > 1e-3


def test_switching_iterates_equals_peft_own_switch():
    """``use`` flips the adapter layers itself (peft's switch re-walks the model); the outputs are
    the same bits as through peft's ``set_adapter`` and ``disable_adapter``, and nothing leaks out."""
    path = tiny.sft_model_path()
    _, tok = models.load_pretrained(path, tokenizer_only=True)
    it = models.IterateAdapters(models.load_base(path, four_bit=False), models.LoraSettings(r=4, alpha=8))
    for t in (1, 2, 3):
        it.create(t)
    perturb_lora_b(it.model, seed=1)
    batch = encoding.pair_batch(tok, ["add 1 2", "reverse c a b"], ["3", "b a c"], ["4", "c"])
    grads_before = {n: p.requires_grad for n, p in it.model.named_parameters()}
    outs = {}
    for t in (None, 1, 2):
        with it.use(t) as m:
            outs[t] = logps.forward_logps(m, batch)
        assert it.model.active_adapter == "iter3" and not it.model._adapters_disabled
    assert {n: p.requires_grad for n, p in it.model.named_parameters()} == grads_before
    with torch.no_grad():
        with it.model.disable_adapter():
            assert torch.equal(outs[None], logps.forward_logps(it.model, batch))
        for t in (1, 2):
            it.model.set_adapter(f"iter{t}")
            assert torch.equal(outs[t], logps.forward_logps(it.model, batch))
    assert not torch.equal(outs[1], outs[2]) and not torch.equal(outs[None], outs[1])
    with pytest.raises(KeyError, match="no iterate 7"):
        with it.use(7):
            pass
