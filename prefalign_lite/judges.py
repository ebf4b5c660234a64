"""The preference judges SPA compares itself with (SPA Table 2 and 7), besides its own Eq. 7-8.

* An external reward model trained on the gold seed set — the analogue of PairRM: a sequence
  classifier with a scalar head, fitted with the Bradley-Terry loss, saved with
  ``save_pretrained`` and read back through ``evaluate.RewardModelJudge`` (the same call a hub
  reward model goes through). It never changes while the policy moves away from the seed data.
* LLM-as-judge: the policy itself is asked which of two answers is better and we read the
  next-token log-probs of the two option labels. The tiny world has no "(A)"/"(B)"; its own letters
  ``a`` and ``b`` play that part. Both orders are asked and averaged to cancel position bias.
"""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import torch
import torch.nn.functional as F


def train_reward_model(sft_path: Path | str, rows: list[dict], out: Path | str, epochs: int = 5,
                       learning_rate: float = 1e-3, batch_size: int = 16, seed: int = 0) -> Path:
    """Fit a scalar reward model (initialised from ``sft_path``) on plain-string preference ``rows``
    with ``-log sigmoid(r(x, y_w) - r(x, y_l))``; save it to ``out`` (written whole, then renamed)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if not rows:
        raise ValueError("the reward model needs at least one preference row")
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(sft_path))
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the new scalar head is expected to be missing from the checkpoint
    try:
        model = AutoModelForSequenceClassification.from_pretrained(str(sft_path), num_labels=1)
    finally:
        hf_logging.set_verbosity(verbosity)
    model.config.pad_token_id = tokenizer.pad_token_id
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    order = list(range(len(rows)))
    rng = random.Random(seed)
    model.train()
    for _ in range(epochs):
        rng.shuffle(order)
        for lo in range(0, len(order), batch_size):
            part = [rows[i] for i in order[lo:lo + batch_size]]
            texts = [_chat(tokenizer, r["prompt"], r[side]) for side in ("chosen", "rejected") for r in part]
            enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            scores = model(**enc).logits[:, 0]
            loss = -F.logsigmoid(scores[:len(part)] - scores[len(part):]).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    out = Path(out)
    scratch = out.with_name(f".{out.name}.partial")
    shutil.rmtree(scratch, ignore_errors=True)
    model.save_pretrained(scratch)
    tokenizer.save_pretrained(scratch)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(scratch, out)
    return out


def reward_model_prefers_first(judge, prompts: list[str], first: list[str], second: list[str]) -> list[bool]:
    """``judge`` is an ``evaluate.RewardModelJudge``; ties go to the first response."""
    s1, s2 = judge.score(prompts, first), judge.score(prompts, second)
    return [bool(a >= b) for a, b in zip(s1, s2)]


def judge_prompt(prompt: str, first: str, second: str) -> str:
    """The in-context judging question, in the world's own words ("rate ... answer a ... answer b")."""
    return f"rate {prompt} answer a {first} answer b {second} good"


@torch.no_grad()
def llm_prefers_first(model, tokenizer, prompts: list[str], first: list[str], second: list[str],
                      batch_size: int = 64) -> list[bool]:
    """LLM-as-judge: ``log p(a) - log p(b)`` as the answer's next token, asked in both orders."""
    def option_gap(xs: list[str], ys: list[str]) -> torch.Tensor:
        a, b = tokenizer.convert_tokens_to_ids(["a", "b"])
        gaps = []
        for lo in range(0, len(prompts), batch_size):
            texts = [_chat(tokenizer, judge_prompt(p, x, y)) for p, x, y in
                     zip(prompts[lo:lo + batch_size], xs[lo:lo + batch_size], ys[lo:lo + batch_size])]
            enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)  # left padding
            last = torch.log_softmax(model(**enc).logits[:, -1].float(), dim=-1)
            gaps.append(last[:, a] - last[:, b])
        return torch.cat(gaps) if gaps else torch.zeros(0)

    if tokenizer.padding_side != "left":
        raise ValueError("llm_prefers_first reads the last position: the tokenizer must pad on the left")
    score = option_gap(first, second) - option_gap(second, first)
    return (score >= 0).tolist()


def _chat(tokenizer, prompt: str, response: str | None = None) -> str:
    messages = [{"role": "user", "content": prompt}]
    if response is not None:
        messages.append({"role": "assistant", "content": response})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=response is None)
