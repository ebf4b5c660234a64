"""Issue 19, item 15, on the embedded world: the KL between iterates scores each sampled answer once
per model (the rows set ``chosen = rejected`` and computed it twice) and gives exactly the value of
the old two-sided rows; a session with ``merged_sampling`` samples from a dense merged copy of the
iterate, rebuilt only when the iterate changes. About 15 s."""
import torch

from prefalign_lite.methods.session import SFT, Session, SessionConfig
from prefalign_lite.settings import EmbeddedSetting


def _perturbed(session: Session, t: int) -> None:
    torch.manual_seed(t)
    session.iterates.create(t)
    with torch.no_grad():
        for name, p in session.iterates.model.named_parameters():
            if "lora_B" in name and f".iter{t}." in name:
                p.normal_(0, 0.05)


def test_the_kl_reads_each_answer_once_per_model_and_equals_the_two_sided_rows():
    session = Session(EmbeddedSetting(), config=SessionConfig(n_eval=16, kl_prompts=16))
    _perturbed(session, 1)
    rows_seen = []
    hook = session.iterates.base.get_input_embeddings().register_forward_pre_hook(   # (rows, tokens) of ids
        lambda m, a: rows_seen.append(a[0].shape[0]) if a[0].shape[1] > 1 else None)
    try:
        kl = session.kl(1, SFT)
        scored = sum(rows_seen) - 16   # the sample's own prefill passes read 16 prompts
    finally:
        hook.remove()
    assert scored == 2 * 16   # 16 answers under pi_1 and under pi_init (the two-sided rows read 64)
    prompts = session.eval_prompts[:16]
    ys = [r[0] for r in session.sample(1, prompts, temperature=1.0, top_p=1.0, seed=session.config.seed + 2)]
    rows = [{"prompt": p, "chosen": y, "rejected": y} for p, y in zip(prompts, ys)]
    old = float((session.logps(1, rows)[0] - session.logps(SFT, rows)[0]).mean())
    assert kl == old


def test_merged_sampling_uses_a_dense_copy_rebuilt_only_when_the_iterate_changes(monkeypatch):
    session = Session(EmbeddedSetting(), config=SessionConfig(n_eval=8, merged_sampling=True))
    _perturbed(session, 1)
    built = []
    real = session.iterates.merged
    monkeypatch.setattr(session.iterates, "merged", lambda *a, **k: built.append(a) or real(*a, **k))
    used = []
    from prefalign_lite.engine import generate

    real_sample = generate.sample
    monkeypatch.setattr(generate, "sample", lambda m, *a, **k: used.append(m) or real_sample(m, *a, **k))
    session.sample(1, session.eval_prompts[:4])
    session.sample(1, session.eval_prompts[:4], seed=1)
    assert len(built) == 1 and not isinstance(used[0], type(session.iterates.model))
    assert used[0] is used[1]   # the same dense copy for the second call
    session.sample(SFT, session.eval_prompts[:4])
    assert len(built) == 2


def test_the_merged_copy_is_freed_before_scoring_and_judging_and_reserved_when_the_batch_is_sized():
    """The merged copy and a reward model, or a judging pass's working set, were alive together."""
    from prefalign_lite.engine import generate, memory

    session = Session(EmbeddedSetting(), config=SessionConfig(n_eval=8, merged_sampling=True))
    _perturbed(session, 1)
    prompts = session.eval_prompts[:4]
    answers = [r[0] for r in session.sample(1, prompts)]
    assert session._merged is not None
    session.score(prompts, answers)
    assert session._merged is None
    session.sample(1, prompts)
    assert session._merged is not None
    session.logps(1, [{"prompt": p, "chosen": a, "rejected": a} for p, a in zip(prompts, answers)])
    assert session._merged is None
    config = session.iterates.base.config
    per = memory.sampling_bytes_per_sequence(config, 340, 300)
    free = 100 * per
    plain = generate.default_batch_size(session.iterates.base, "cuda", free_bytes=free)
    reserved = generate.default_batch_size(session.iterates.base, "cuda", free_bytes=free, reserve_bytes=free / 2)
    assert (plain, reserved) == (64, 32)
