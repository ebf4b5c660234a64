"""Reward models: score (prompt, response) pairs with any ``AutoModelForSequenceClassification``
(a public reward model by hub id, or a local folder), and fit one on labelled pairs with the
Bradley-Terry loss."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..core.files import building_folder


def bradley_terry_loss(reward_chosen: torch.Tensor, reward_rejected: torch.Tensor) -> torch.Tensor:
    """Per-pair reward-model loss under the Bradley-Terry model, ``-log sigmoid(r(x, y_w) - r(x, y_l))``
    (SPA Eq. 1-2, Sr-DPO Eq. 2-3)."""
    if reward_chosen.shape != reward_rejected.shape:
        raise ValueError(f"reward_chosen {tuple(reward_chosen.shape)} and reward_rejected "
                         f"{tuple(reward_rejected.shape)} differ in shape")
    return -F.logsigmoid(reward_chosen - reward_rejected)


def chat_text(tokenizer, prompt: str, response: str) -> str:
    """The two-turn conversation as the tokenizer's chat template writes it: what a reward model reads."""
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
                                         tokenize=False)


class RewardModel:
    """Scores (prompt, response) pairs through the tokenizer's chat template; ``name`` says which
    model judged (the report names its judge)."""

    def __init__(self, path_or_id: str | Path, device: str = "cpu", batch_size: int = 16):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"RewardModel: batch_size must be an integer >= 1, got {batch_size!r}")
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.name = f"reward model {path_or_id}"
        self.tokenizer = AutoTokenizer.from_pretrained(str(path_or_id))
        self.model = AutoModelForSequenceClassification.from_pretrained(str(path_or_id)).to(device).eval()
        self.device, self.batch_size = device, batch_size

    def score(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        if len(prompts) != len(responses):
            raise ValueError(f"RewardModel.score: {len(prompts)} prompts but {len(responses)} responses")
        if not prompts:
            raise ValueError("RewardModel.score on zero prompts: nothing to evaluate")
        for name, texts in (("prompts", prompts), ("responses", responses)):
            for i, text in enumerate(texts):
                if not isinstance(text, str):
                    raise ValueError(f"RewardModel.score: {name}[{i}] must be a string, got {type(text).__name__}")
        texts = [chat_text(self.tokenizer, p, r) for p, r in zip(prompts, responses)]
        scores = []
        with torch.no_grad():
            for lo in range(0, len(texts), self.batch_size):
                enc = self.tokenizer(texts[lo:lo + self.batch_size], return_tensors="pt", padding=True,
                                     add_special_tokens=False).to(self.device)
                scores.append(self.model(**enc).logits[:, 0].float().cpu().numpy())
        return np.concatenate(scores)


def train_reward_model(init_path: Path | str, rows: list[dict], out: Path | str, epochs: int = 2,
                       learning_rate: float = 1e-3, batch_size: int = 32, seed: int = 0, max_length: int = 64) -> Path:
    """Fit a scalar reward model (initialised from the causal LM at ``init_path``) on plain-string
    preference ``rows`` with :func:`bradley_terry_loss`; save it to ``out`` (built whole, then renamed)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if not rows:
        raise ValueError("the reward model needs at least one preference row")
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(init_path))
    tokenizer.truncation_side = "left"  # a long prompt loses its beginning, never the answer
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the new scalar head is expected to be missing from the checkpoint
    try:
        model = AutoModelForSequenceClassification.from_pretrained(str(init_path), num_labels=1)
    finally:
        hf_logging.set_verbosity(verbosity)
    model.config.pad_token_id = tokenizer.pad_token_id
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    order, rng = list(range(len(rows))), random.Random(seed)
    model.train()
    for _ in range(epochs):
        rng.shuffle(order)
        for lo in range(0, len(order), batch_size):
            part = [rows[i] for i in order[lo:lo + batch_size]]
            texts = [chat_text(tokenizer, r["prompt"], r[side]) for side in ("chosen", "rejected") for r in part]
            enc = tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=max_length,
                            add_special_tokens=False)
            scores = model(**enc).logits[:, 0]
            loss = bradley_terry_loss(scores[:len(part)], scores[len(part):]).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with building_folder(out) as scratch:
        model.save_pretrained(scratch)
        tokenizer.save_pretrained(scratch)
    return Path(out)
