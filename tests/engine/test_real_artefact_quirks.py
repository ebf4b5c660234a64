"""The engine on the quirk-faithful stand-ins (issue 19, items 3, 5-11, 15): what stopped a real run
in its first minute, each on the stand-in that carries the quirk. Every test here failed on the
engine before the fix it names."""
import numpy as np
import pytest
import torch

from prefalign_lite.engine import encoding, generate, logps, models
from prefalign_lite.engine.reward_model import RewardModel
from prefalign_lite.settings import resolve
from prefalign_lite.settings.standin_data import ultrafeedback_splits


@pytest.fixture(scope="module")
def qwen():
    return models.load_pretrained(resolve("standin:qwen2.5-0.5b-instruct"))


@pytest.fixture(scope="module")
def zephyr():
    return models.load_pretrained(resolve("standin:zephyr-7b-sft-full"))


@pytest.fixture(scope="module")
def rows():
    return ultrafeedback_splits()["test_prefs"]


def test_item8_an_answer_opening_with_newlines_extends_qwens_prompt(qwen):
    """Qwen2's pre-tokenizer joins the generation prompt's newline with the answer's: the prompt's
    ids were no prefix of the conversation's and encoding raised a plain ValueError."""
    _, tok = qwen
    head, tail = encoding.encode(tok, "Give me tips for running.", "\n\nSure. Run slowly.")
    assert tok.decode(tail) == "\n\nSure. Run slowly.<|im_end|>\n"
    whole = encoding.text_ids(tok, tok.apply_chat_template(
        [{"role": "user", "content": "Give me tips for running."}, {"role": "assistant", "content": "\n\nSure. Run slowly."}],
        tokenize=False))
    assert whole[:len(head)] != head   # the quirk is there: the whole text merges across the boundary
    assert tok.decode(head) + tok.decode(tail) == tok.decode(whole)
    # a template that does not extend its prompt is an unusable pair: skip mode counts it as the chat
    # template's, and when it leaves no row, that is the error (not max_length)
    bad = type(tok).from_pretrained(resolve("standin:qwen2.5-0.5b-instruct"))
    bad.chat_template = "{% for m in messages %}{{ m['role'] }}{% endfor %}{% if add_generation_prompt %}!{% endif %}"
    rows = [{"prompt": "a", "chosen": "b", "rejected": "c"}]
    with pytest.raises(encoding.ChatTemplateError, match="no usable pair among 1 rows: skipped 1 rows for the chat templ"):
        encoding.tokenise_rows(bad, rows, on_unusable="skip")
    with pytest.raises(encoding.UnusablePairError, match="row 0: the chat template's conversation does not start"):
        encoding.tokenise_rows(bad, rows)


def test_item10_zephyr_sees_its_bos_in_training_and_sampling(zephyr):
    _, tok = zephyr
    head, tail = encoding.encode(tok, "Help me with running.", "Run slowly.")
    assert head[0] == tok.bos_token_id == 1 and head.count(1) == 1 and 1 not in tail
    ids, _ = generate.prompt_ids(tok, ["Help me with running."])
    assert ids[0] == head
    long = "word " * 400 + "Help me with running."
    cut, n_cut = generate.prompt_ids(tok, [long], max_prompt_tokens=32)
    assert n_cut == 1 and len(cut[0]) == 32 and cut[0][0] == 1   # cut from the left, BOS kept
    pair = encoding.tokenise_rows(tok, [{"prompt": long, "chosen": "Yes.", "rejected": "No."}], max_length=40).pairs[0]
    assert pair.prompt_ids[0] == 1 and pair.truncated


def test_item9_samples_at_t1_top_p1_are_draws_from_the_model_itself(qwen):
    """Qwen2.5-Instruct's generation_config has top_k 20 and repetition_penalty 1.1; the sampler used to
    inherit both (and transformers' global top_k of 50). A real dataset's setting samples with no
    top-k; the embedded world keeps the top-k 50 its committed numbers were drawn with, now stated."""
    from prefalign_lite.settings import DatasetSetting, EmbeddedSetting

    top_k = DatasetSetting.__dataclass_fields__["sample_top_k"].default
    assert top_k == 0 and EmbeddedSetting.sample_top_k == generate.DEFAULT_TOP_K == 50
    model, tok = qwen
    ids, _ = generate.prompt_ids(tok, ["Give me tips for running.", "Help me with sleeping better."])
    input_ids, mask = generate._left_padded(ids, tok.pad_token_id, "cpu")
    seen = {}
    real = model.generate

    def watched(**kwargs):
        seen["config"] = kwargs["generation_config"]
        out = real(**kwargs, output_scores=True, output_logits=True, return_dict_in_generate=True)
        seen["scores"], seen["logits"] = out.scores, out.logits
        return out.sequences

    model.generate = watched
    try:
        torch.manual_seed(0)
        generate.generate_ids(model, input_ids, mask, temperature=1.0, top_p=1.0, max_new_tokens=6,
                              pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, top_k=top_k)
    finally:
        del model.generate
    assert model.generation_config.top_k == 20   # the checkpoint's defaults are still there, and unused
    assert seen["config"].top_k == 0 and seen["config"].repetition_penalty == 1.0
    for scores, raw in zip(seen["scores"], seen["logits"]):
        assert torch.equal(scores, raw)   # no processor touched the logits: the sample is from pi itself


def test_item3_sampling_uses_the_key_value_cache_even_when_the_config_says_no(qwen):
    model, tok = qwen
    model.config.use_cache = model.generation_config.use_cache = False   # what the bench's random configs set
    lengths = []
    hook = model.register_forward_pre_hook(lambda m, a, kw: lengths.append(kw["input_ids"].shape[1]), with_kwargs=True)
    try:
        ids = torch.tensor([[5, 6, 7, 8]])
        generate.generate_ids(model, ids, torch.ones_like(ids), temperature=1.0, max_new_tokens=4, min_new_tokens=4,
                              pad_token_id=tok.pad_token_id, eos_token_id=None)
    finally:
        hook.remove()
        model.config.use_cache = model.generation_config.use_cache = True
    assert lengths == [4, 1, 1, 1]   # the prompt once, then one token per step


def test_item7_sampling_batches_are_budgeted_in_tokens():
    short = [12] * 600
    batches = generate.sampling_batches(short, 256, 16)
    assert [len(b) for b in batches] == [256, 256, 88]   # short prompts: batch_size consecutive sequences, as before
    mixed = [20] * 10 + [2000] + [20] * 10
    sizes = [len(b) for b in generate.sampling_batches(mixed, 8, 300, token_budget=8 * 640)]
    assert sizes == [8, 2, 2, 8, 1]   # a batch holding the 2,000-token prompt takes two sequences (2 x 2,300 <= 5,120)
    assert sum(sizes) == len(mixed)


def test_item7_a_long_prompt_is_cut_to_max_prompt_tokens_when_sampling(qwen, rows):
    model, tok = qwen
    longest = max(rows, key=lambda r: len(r["prompt"]))["prompt"]
    widths = []
    hook = model.register_forward_pre_hook(lambda m, a, kw: widths.append(kw["input_ids"].shape[1]), with_kwargs=True)
    try:
        _, stats = generate.sample(model, tok, [longest, "Help me with running."], max_new_tokens=2, progress=False,
                                   max_prompt_tokens=64)
    finally:
        hook.remove()
    assert stats.prompts_cut == 1 and widths[0] == 64


def test_item6_every_pass_runs_under_the_devices_autocast(qwen, monkeypatch):
    """Log-probs, KL log-probs, sampling and reward scoring all run under ``models.autocast_for``;
    forced on for the CPU here, the LoRA and base matmuls compute in bf16 (outside autocast peft
    casts a 4-bit layer's LoRA input to float32)."""
    from prefalign_lite.engine import reward_model

    base, tok = qwen
    iterates = models.IterateAdapters(models.load_base(resolve("standin:qwen2.5-0.5b-instruct"), four_bit=False))
    iterates.create(1)
    seen = []
    layer = next(m for n, m in iterates.model.named_modules() if n.endswith("q_proj.lora_A.iter1"))
    hook = layer.register_forward_hook(lambda m, args, out: seen.append(out.dtype))
    forced = lambda device, enabled=None, model=None: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    for module in (logps, generate, reward_model):
        monkeypatch.setattr(module, "autocast_for", forced)
    rows = [{"prompt": "Help me with running.", "chosen": "Run.", "rejected": "Walk."}]
    try:
        logps.pair_logps(iterates.model, tok, rows)
        logps.completion_logps_of(iterates.model, tok, ["Help me."], ["Run."])
        generate.sample(iterates.model, tok, ["Help me."], max_new_tokens=2, progress=False)
    finally:
        hook.remove()
    assert len(seen) >= 4 and set(seen) == {torch.bfloat16}
    judge = RewardModel(resolve("standin:skywork-reward-v2-qwen3-0.6b"))
    scored = []
    hook = judge.model.model.layers[0].self_attn.q_proj.register_forward_hook(lambda m, a, out: scored.append(out.dtype))
    judge.score(["Help me."], ["Run."])
    hook.remove()
    assert scored == [torch.bfloat16]


def test_item11_a_reward_model_without_any_pad_token_scores_a_batch_of_32(rows):
    judge = RewardModel(resolve("standin:skywork-reward-v2-llama-3.1-8b"), batch_size=32)
    assert judge.tokenizer.pad_token is None and judge.model.config.pad_token_id is None
    prompts = [r["prompt"] for r in rows[:32]]
    chosen = judge.score(prompts, [r["chosen"][1]["content"] for r in rows[:32]])
    alone = RewardModel(resolve("standin:skywork-reward-v2-llama-3.1-8b"), batch_size=1).score(
        prompts[:6], [r["chosen"][1]["content"] for r in rows[:6]])
    assert np.allclose(alone, chosen[:6], atol=1e-4)   # each score read at its own last token, padding or not
    rejected = judge.score(prompts, [r["rejected"][1]["content"] for r in rows[:32]])
    assert (chosen > rejected).mean() >= 0.7


def test_item5_a_reward_model_on_a_gpu_waits_in_cpu_memory(monkeypatch):
    """Built for ``cuda`` the judge is loaded into CPU memory (the constructor used to move it to the
    GPU and keep it there) and is on the GPU only inside ``on_device``."""
    judge = RewardModel(resolve("standin:skywork-reward-v2-qwen3-0.6b"), device="cuda")
    assert judge.offload and next(judge.model.parameters()).device.type == "cpu"
    assert next(judge.model.parameters()).dtype == torch.bfloat16
    moves = []
    monkeypatch.setattr(judge.model, "to", lambda device: moves.append(str(device)) or judge.model)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: moves.append("empty_cache"))
    with judge.on_device():
        assert moves == ["cuda"]
    assert moves == ["cuda", "cpu", "empty_cache"]


def _perturb(model, t: int) -> None:
    torch.manual_seed(t)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name and f".iter{t}." in name:
                p.normal_(0, 0.05)


def test_item15_at_most_k_adapters_stay_resident_and_parked_ones_come_back_unchanged(qwen):
    _, tok = qwen
    it = models.IterateAdapters(models.load_base(resolve("standin:qwen2.5-0.5b-instruct"), four_bit=False),
                                models.LoraSettings(r=4, alpha=8), resident=2)
    rows = [{"prompt": "Help me with running.", "chosen": "Run slowly.", "rejected": "Walk."}]
    before = {}
    for t in (1, 2, 3, 4):
        it.create(t)
        _perturb(it.model, t)   # every adapter a different function
        with it.use(t) as m:
            before[t] = logps.pair_logps(m, tok, rows)[0]
    assert it.parked == {"iter1", "iter2"}   # at most two on the device: the most recently used
    for t in (1, 3, 2, 4):
        with it.use(t) as m:
            assert torch.equal(logps.pair_logps(m, tok, rows)[0], before[t])
        assert len(set(it.names) - it.parked) <= 2 and f"iter{t}" not in it.parked


def test_an_answer_stops_at_qwens_second_end_token(qwen, monkeypatch):
    """Qwen2.5's generation_config stops on <|im_end|> or <|endoftext|>; the sampler stopped only at
    the tokenizer's eos, so an answer that emitted <|endoftext|> ran on to max_new_tokens."""
    model, tok = qwen
    endoftext = tok.convert_tokens_to_ids("<|endoftext|>")
    assert tok.eos_token_id != endoftext and endoftext in model.generation_config.eos_token_id
    assert generate.stop_ids(model, tok) == [tok.eos_token_id, *[i for i in model.generation_config.eos_token_id
                                                                  if i != tok.eos_token_id]]
    saved = model.lm_head
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=True)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-1e4)
        head.bias[endoftext] = 1e4   # every draw is <|endoftext|>
    model.lm_head = head
    lengths, generate_ids = [], generate.generate_ids

    def recorded(*args, **kwargs):
        out = generate_ids(*args, **kwargs)
        lengths.append(out.shape[1])
        return out
    monkeypatch.setattr(generate, "generate_ids", recorded)
    try:
        answers, _ = generate.sample(model, tok, ["Say something."], temperature=1.0, top_p=1.0, max_new_tokens=12,
                                     progress=False)
    finally:
        model.lm_head = saved
    assert answers == [[""]] and lengths == [1]   # it stopped at the first <|endoftext|>, not after 12
