"""The preference judges SPA compares itself with (SPA Table 2 and 7), besides its own Eq. 7-8.

* An external reward model — the analogue of PairRM: a sequence classifier with a scalar head,
  initialised from the SFT model and fitted with the Bradley–Terry loss on labelled pairs of
  prompts outside SPA's pool (PairRM was trained on external data, not on SPA's seed), saved with
  ``save_pretrained`` and read back through ``evaluate.RewardModelJudge`` like a hub reward model.
  It never changes while the policy moves away from its data.
* LLM-as-judge: a fixed model (the SFT model, as SPA's judge is fixed; App. B.2) is asked which
  answer is better and its log-probs of the possible verdicts are compared. In the embedded world
  the question is the judging skill its SFT data taught, ``check <prompt>`` followed by an answer
  and ``good`` or ``bad``; each answer is checked on its own and the one with the larger log-odds of
  ``good`` wins. For a real model it is the paper's pairwise question answered with "(A)" or "(B)",
  asked in both orders so that a preference for a position cancels.

Every judge gives a tie to the second answer, as SPA's Eq. 8 does (y1 is chosen only if p > 0.5).
"""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import torch
import torch.nn.functional as F

from . import logps

AB_QUESTION = ("Which of the two responses answers the question better?\n\nQuestion: {prompt}\n\n"
               "(A) {first}\n\n(B) {second}\n\nAnswer with (A) or (B).")


def train_reward_model(sft_path: Path | str, rows: list[dict], out: Path | str, epochs: int = 2,
                       learning_rate: float = 1e-3, batch_size: int = 32, seed: int = 0, max_length: int = 64) -> Path:
    """Fit a scalar reward model (initialised from ``sft_path``) on plain-string preference ``rows``
    with ``-log sigmoid(r(x, y_w) - r(x, y_l))``; save it to ``out`` (written whole, then renamed)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if not rows:
        raise ValueError("the reward model needs at least one preference row")
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(sft_path))
    tokenizer.truncation_side = "left"  # a long prompt loses its beginning, never the answer
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the new scalar head is expected to be missing from the checkpoint
    try:
        model = AutoModelForSequenceClassification.from_pretrained(str(sft_path), num_labels=1)
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
            texts = [_chat(tokenizer, r["prompt"], r[side]) for side in ("chosen", "rejected") for r in part]
            enc = tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=max_length,
                            add_special_tokens=False)
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


def reward_model_prefers_first(judge, rows: list[dict]) -> list[bool]:
    """``judge`` is an ``evaluate.RewardModelJudge``; ``chosen`` is the first answer of each row."""
    prompts = [r["prompt"] for r in rows]
    s1, s2 = judge.score(prompts, [r["chosen"] for r in rows]), judge.score(prompts, [r["rejected"] for r in rows])
    return [bool(a > b) for a, b in zip(s1, s2)]


def llm_prefers_first(model, tokenizer, setting, rows: list[dict], max_length: int) -> list[bool]:
    """LLM-as-judge in the setting's style (see the module doc); ``chosen`` is the first answer."""
    if setting.judge_style == "check":
        return (_check_score(model, tokenizer, setting, rows, "chosen", max_length)
                > _check_score(model, tokenizer, setting, rows, "rejected", max_length)).tolist()
    return (_ab_margin(model, tokenizer, rows, False, max_length) - _ab_margin(model, tokenizer, rows, True, max_length) > 0).tolist()


def _check_score(model, tokenizer, setting, rows, side: str, max_length: int) -> torch.Tensor:
    """``log p(answer good) - log p(answer bad)`` after ``check <prompt>``: the judge's log-odds
    that the answer is right."""
    from . import world

    asked = [{"prompt": world.check_prompt(r["prompt"]), "chosen": world.check_completion(r[side], True),
              "rejected": world.check_completion(r[side], False)} for r in rows]
    good, bad = _logps(model, tokenizer, asked, max_length)
    return good - bad


def _ab_margin(model, tokenizer, rows, swapped: bool, max_length: int) -> torch.Tensor:
    """``log p("(A)") - log p("(B)")`` for the pairwise question, answers in the given order."""
    asked = [{"prompt": AB_QUESTION.format(prompt=r["prompt"], first=r["rejected" if swapped else "chosen"],
                                           second=r["chosen" if swapped else "rejected"]),
              "chosen": "(A)", "rejected": "(B)"} for r in rows]
    a, b = _logps(model, tokenizer, asked, max_length)
    return a - b


@torch.no_grad()
def _logps(model, tokenizer, rows, max_length: int, batch_size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    device = next(model.parameters()).device
    out_w, out_l = [], []
    for lo in range(0, len(rows), batch_size):
        part = rows[lo:lo + batch_size]
        batch = logps.pair_batch(tokenizer, [r["prompt"] for r in part], [r["chosen"] for r in part],
                                 [r["rejected"] for r in part], max_length=max_length).to(device)
        w, l_ = logps.split_pairs(logps.forward_logps(model, batch)[0])
        out_w.append(w.float().cpu()), out_l.append(l_.float().cpu())
    return torch.cat(out_w), torch.cat(out_l)


def _chat(tokenizer, prompt: str, response: str) -> str:
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
                                         tokenize=False)
