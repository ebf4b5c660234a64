"""Completion log-probs and iterates as LoRA adapters on one (4-bit) base."""
import pytest
import torch

from prefalign_lite import logps, models, tiny


@pytest.fixture(scope="module")
def sft():
    path = tiny.sft_model_path()
    return path, *tiny.load(path)


def test_pair_batch_masks_prompt_and_padding(sft):
    _, _, tok = sft
    batch = logps.pair_batch(tok, ["add 1 2", "sort 3 1 2"], ["3", "1 2 3"], ["4 4", "3"])
    assert batch.input_ids.shape[0] == 4 and batch.n_pairs == 2
    completion = [tok.convert_ids_to_tokens([i for i, l in zip(ids, lab) if l != -100])
                  for ids, lab in zip(batch.input_ids.tolist(), batch.labels.tolist())]
    assert completion == [["3", "<eos>"], ["1", "2", "3", "<eos>"], ["4", "4", "<eos>"], ["3", "<eos>"]]
    assert (batch.attention_mask.sum(-1) == (batch.input_ids != tok.pad_token_id).sum(-1)).all()
    aug = logps.pair_batch(tok, ["add 1 2"], ["3"], ["4"], prefix="answer perfect")
    assert tok.convert_ids_to_tokens(aug.input_ids[0].tolist())[:4] == ["<|user|>", "answer", "perfect", "add"]


def test_batched_logps_equal_one_by_one_and_ignore_padding(sft):
    _, model, tok = sft
    prompts, chosen, rejected = ["add 1 2", "sort 3 1 2 5 4"], ["3", "1 2 3 4 5"], ["4 4", "3"]
    batch = logps.pair_batch(tok, prompts, chosen, rejected)
    with torch.no_grad():
        together, lengths, _ = logps.forward_logps(model, batch)
        alone = torch.cat([logps.forward_logps(model, logps.pair_batch(tok, [p], [c], [r]))[0]
                           for p, c, r in zip(prompts, chosen, rejected)]).view(2, 2).T.reshape(-1)
    assert torch.allclose(together, alone, atol=1e-5)
    assert lengths.tolist() == [2, 6, 3, 2]
    # Eq. 12 with lambda = 0 is the plain log-prob.
    with torch.no_grad():
        _, _, logits = logps.forward_logps(model, batch, keep_logits=True)
    assert torch.allclose(logps.extrapolated_pair_logps(logits, logits * 0.5, batch.labels, 0.0), together, atol=1e-5)


def test_iterates_as_adapters_on_one_4bit_base(sft, tmp_path):
    path, model, tok = sft
    base = models.load_base(path, four_bit=True)
    assert "Linear4bit" in type(base.model.layers[0].self_attn.q_proj).__name__
    it = models.IterateAdapters(base, models.LoraSettings(r=4, alpha=8))
    it.create(1)
    batch = logps.pair_batch(tok, ["add 1 2"], ["3"], ["4"])
    with it.use(None) as m:
        init = logps.forward_logps(m, batch)[0]
    with it.use(1) as m:
        fresh = logps.forward_logps(m, batch)[0]
    assert torch.allclose(init, fresh)  # a new adapter starts at the base (LoRA B = 0)
    trainable = [n for n, p in it.model.named_parameters() if p.requires_grad]
    assert trainable and all(".iter1." in n for n in trainable)
    # train iterate 1 a little, then make iterate 2 from it
    opt = torch.optim.Adam([p for p in it.model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        loss = -logps.forward_logps(it.model, batch)[0][0]
        opt.zero_grad(); loss.backward(); opt.step()
    with it.use(1) as m:
        after1 = logps.forward_logps(m, batch)[0]
    assert after1[0] > init[0]
    it.create(2, init_from=1)
    with it.use(2) as m:
        assert torch.allclose(logps.forward_logps(m, batch)[0], after1)
    with it.use(None) as m:
        assert torch.allclose(logps.forward_logps(m, batch)[0], init)  # the base never moved
    assert sorted(it.names) == ["iter1", "iter2"]
    # save and resume
    saved = it.save(1, tmp_path)
    assert (saved / "adapter_config.json").exists()
    again = models.IterateAdapters(models.load_base(path, four_bit=True), models.LoraSettings(r=4, alpha=8))
    again.load(1, tmp_path)
    with again.use(1) as m:
        assert torch.allclose(logps.forward_logps(m, batch)[0], after1, atol=1e-5)
