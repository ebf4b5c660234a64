"""Reward models: score (prompt, response) pairs with any ``AutoModelForSequenceClassification``
(a public reward model by hub id, or a local folder), and fit one on labelled pairs with the
Bradley-Terry loss."""
from __future__ import annotations

import contextlib
import logging
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..core.files import building_folder
from .chat import bos_kept, render_chat, text_ids
from .checkpoints import check_architecture, check_vocabulary, checked_source
from .encoding import cut_left, token_batches
from .models import autocast_for, default_dtype

log = logging.getLogger(__name__)


def bradley_terry_loss(reward_chosen: torch.Tensor, reward_rejected: torch.Tensor) -> torch.Tensor:
    """Per-pair reward-model loss under the Bradley-Terry model, ``-log sigmoid(r(x, y_w) - r(x, y_l))``
    (SPA Eq. 1-2, Sr-DPO Eq. 2-3)."""
    if reward_chosen.shape != reward_rejected.shape:
        raise ValueError(f"reward_chosen {tuple(reward_chosen.shape)} and reward_rejected "
                         f"{tuple(reward_rejected.shape)} differ in shape")
    return -F.logsigmoid(reward_chosen - reward_rejected)


def chat_text(tokenizer, prompt: str, response: str) -> str:
    """The two-turn conversation as the tokenizer's chat template writes it: what a reward model reads."""
    return render_chat(tokenizer, [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}])


def pad_id_for(tokenizer, config) -> int:
    """The id that pads a reward model's batches: the tokenizer's pad token, else the config's
    ``pad_token_id``, else its (first) end token, else 0. Which id it is does not change a score:
    padded positions are masked and the score is read at each row's last real token."""
    for candidate in (getattr(tokenizer, "pad_token_id", None), getattr(config, "pad_token_id", None),
                      getattr(tokenizer, "eos_token_id", None), getattr(config, "eos_token_id", None)):
        if isinstance(candidate, (list, tuple)):
            candidate = candidate[0] if candidate else None
        if candidate is not None:
            return int(candidate)
    return 0


def reads_own_padding(model, tokenizer) -> bool:
    """Whether transformers' sequence classifier finds each row's last token itself: only when the
    config names a pad id that the rendered text never holds (not BOS or EOS). Otherwise (Llama-3.1's
    reward models have no pad id: a batch of two raises) the kit reads the score at the last
    attended position (:func:`last_token_scores`)."""
    pad = getattr(model.config, "pad_token_id", None)
    ends = {getattr(tokenizer, "eos_token_id", None), getattr(tokenizer, "bos_token_id", None)}
    eos = getattr(model.config, "eos_token_id", None)
    ends |= set(eos) if isinstance(eos, (list, tuple)) else {eos}
    return pad is not None and pad not in ends


def last_token_scores(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, label: int = 0) -> torch.Tensor:
    """The head's output ``label`` at each row's last attended token (padding on either side), ``(N,)``
    in float32: what transformers' ``*ForSequenceClassification`` computes, without its pad-token search."""
    backbone, head = getattr(model, model.base_model_prefix), getattr(model, "score")
    hidden = backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    last = (positions * attention_mask).argmax(-1)
    return head(hidden[torch.arange(hidden.shape[0], device=hidden.device), last]).float()[:, label]


def encode_chats(tokenizer, prompts: list[str], responses: list[str], max_length: int | None = None) -> list[list[int]]:
    """The token ids of each two-turn conversation (:func:`chat_text`; BOS where the tokenizer adds
    one), cut from the left to ``max_length`` (a BOS token stays)."""
    first, out = bos_kept(tokenizer), []
    for p, r in zip(prompts, responses):
        ids = text_ids(tokenizer, chat_text(tokenizer, p, r))
        out.append(cut_left(ids, max_length, first) if max_length else ids)
    return out


def _padded(seqs: list[list[int]], pad: int, device, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    fill = [[pad] * (width - len(s)) for s in seqs]
    ones = [[1] * len(s) for s in seqs]
    zeros = [[0] * (width - len(s)) for s in seqs]
    if left:
        return (torch.tensor([f + s for f, s in zip(fill, seqs)], device=device),
                torch.tensor([z + o for z, o in zip(zeros, ones)], device=device))
    return (torch.tensor([s + f for f, s in zip(fill, seqs)], device=device),
            torch.tensor([o + z for z, o in zip(zeros, ones)], device=device))


def batch_scores(model, tokenizer, seqs: list[list[int]], device, own_padding: bool | None = None,
                 label: int = 0) -> torch.Tensor:
    """Scores (the head's output ``label``) of one batch of token-id rows, padded on the tokenizer's
    ``padding_side`` (the kit's own tokenizers pad on the left: the ids the tokenizer's own batch
    call gives), gradients flowing when enabled."""
    own = reads_own_padding(model, tokenizer) if own_padding is None else own_padding
    pad = model.config.pad_token_id if own else pad_id_for(tokenizer, model.config)
    ids, mask = _padded(seqs, pad, device, left=getattr(tokenizer, "padding_side", "right") == "left")
    if own:
        return model(input_ids=ids, attention_mask=mask).logits[:, label]
    if hasattr(model, "score") and hasattr(model, "base_model_prefix"):
        return last_token_scores(model, ids, mask, label)
    return torch.cat([model(input_ids=torch.tensor([s], device=device)).logits[:, label] for s in seqs])


# Tokens (rows x longest) of one scoring pass: 32 conversations of 1,024 tokens, or 8 of the judge's
# 4,096; about 5 GB of an 8B reward model's working set (bench --estimate).
REWARD_TOKEN_BUDGET = 32_768

class RewardModel:
    """Scores (prompt, response) pairs through the tokenizer's chat template; ``name`` says which
    model judged (the report names its judge).

    Conversations longer than ``max_length`` tokens are cut from the left; ``max_length`` is capped
    at the model's ``max_position_embeddings``. With ``offload`` (the default on a GPU) the model
    lives in CPU memory and is on ``device`` only while it scores, so a 7-8B judge does not stay
    resident through training and sampling; every GPU pass runs under half-precision autocast. A pass
    scores at most ``batch_size`` conversations and ``token_budget`` tokens (rows x longest). A
    tokenizer or config without a pad token is fine (:func:`pad_id_for`).

    Checked when it loads (:func:`check_reward_config`, :func:`check_score_head`): the model gives
    one output per conversation (``num_labels == 1``; for a classifier with several outputs, name
    the one to read with ``label``) from a trained head. Every score is finite, or ``score`` raises
    naming the row."""

    def __init__(self, path_or_id: str | Path, device: str = "cpu", batch_size: int = 16,
                 max_length: int | None = 4096, offload: bool | None = None, label: int | None = None,
                 token_budget: int = REWARD_TOKEN_BUDGET):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"RewardModel: batch_size must be an integer >= 1, got {batch_size!r}")
        if max_length is not None and (not isinstance(max_length, int) or max_length < 2):
            raise ValueError(f"RewardModel: max_length must be an integer >= 2 or None, got {max_length!r}")
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        self.name = f"reward model {path_or_id}"
        source = checked_source(path_or_id, "reward model")
        config = AutoConfig.from_pretrained(source)
        self.label = check_reward_config(config, self.name, label)
        self.device, self.batch_size, self.token_budget = torch.device(device), batch_size, token_budget
        self.max_length = context_length(config, max_length, self.name)
        self.offload = self.device.type == "cuda" if offload is None else offload
        self.home = torch.device("cpu") if self.offload else self.device
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        if not getattr(self.tokenizer, "chat_template", None):
            raise ValueError(f"{self.name}: its tokenizer has no chat template; the judge reads each (prompt, answer) "
                             "as the two-turn chat the template writes, so a reward model needs one")
        kwargs = {"dtype": default_dtype(self.device)} if self.device.type == "cuda" else {}
        model, info = AutoModelForSequenceClassification.from_pretrained(source, output_loading_info=True, **kwargs)
        check_score_head(model, info, self.name)
        check_vocabulary(model, self.tokenizer, self.name)
        self.model = model.to(self.home).eval()
        self.own_padding = reads_own_padding(self.model, self.tokenizer)

    @contextlib.contextmanager
    def on_device(self):
        """The model on ``device`` while inside (moved back to CPU memory after, with ``offload``)."""
        if self.home != self.device:
            self.model.to(self.device)
        try:
            yield self.model
        finally:
            if self.home != self.device:
                self.model.to(self.home)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()

    def score(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        """The reward of each (prompt, response), ``(N,)`` float32; a ``ValueError`` naming the
        first row whose score is NaN or infinite."""
        if len(prompts) != len(responses):
            raise ValueError(f"RewardModel.score: {len(prompts)} prompts but {len(responses)} responses")
        if not prompts:
            raise ValueError("RewardModel.score on zero prompts: nothing to evaluate")
        for name, texts in (("prompts", prompts), ("responses", responses)):
            for i, text in enumerate(texts):
                if not isinstance(text, str):
                    raise ValueError(f"RewardModel.score: {name}[{i}] must be a string, got {type(text).__name__}")
        seqs = encode_chats(self.tokenizer, prompts, responses, self.max_length)
        scores = []
        with torch.no_grad(), self.on_device() as model, autocast_for(self.device, model=model):
            for batch in token_batches([len(s) for s in seqs], self.batch_size, self.token_budget):
                part = seqs[batch.start:batch.stop]
                scores.append(batch_scores(model, self.tokenizer, part, self.device, self.own_padding,
                                           self.label).float().cpu().numpy())
        return finite_scores(np.concatenate(scores), self.name, prompts)


def check_reward_config(config, name: str, label: int | None = None) -> int:
    """The index of the output read as the reward: 0 for a model with one output label; ``label``
    for one with several (required there: its first logit is no reward). A ``ValueError`` naming the
    model and ``num_labels`` otherwise, or naming the architecture when the checkpoint is a causal LM."""
    check_architecture(config, name, causal=False)
    n = int(getattr(config, "num_labels", 1))
    if label is None:
        if n != 1:
            labels = getattr(config, "id2label", None) or {}
            raise ValueError(f"{name}: the model has num_labels = {n} (outputs {dict(labels)}); a reward model gives one "
                             f"score per answer. Pass label=<index in 0..{n - 1}> to RewardModel to read one output")
        return 0
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < n:
        raise ValueError(f"{name}: label must be an integer in [0, num_labels) = [0, {n}), got {label!r}")
    return label


def check_score_head(model, loading_info: dict, name: str) -> None:
    """A ``ValueError`` naming the model when its classification head (``score`` or ``classifier``)
    was not in the checkpoint: transformers gives it random weights (a causal LM's folder as judge)."""
    missing = sorted(k for k in loading_info.get("missing_keys", ()) if k.split(".")[0] in ("score", "classifier"))
    if missing:
        raise ValueError(f"{name}: the checkpoint has no trained score head ({missing} would be newly initialised, so "
                         "every score would be random); is it a causal LM rather than a reward model?")


def context_length(config, max_length: int | None, name: str) -> int | None:
    """``max_length`` capped at the model's positions (``max_position_embeddings`` of its text
    config): a longer conversation would index past a learned position table."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    positions = getattr(text, "max_position_embeddings", None)
    if not isinstance(positions, int) or positions < 2 or (max_length is not None and max_length <= positions):
        return max_length
    log.info("%s: scoring context capped at its max_position_embeddings %d (asked for %s)", name, positions, max_length)
    return positions


def finite_scores(scores: np.ndarray, name: str, prompts: list[str]) -> np.ndarray:
    """``scores`` unchanged when all are finite; else a ``ValueError`` naming the first bad row."""
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{name}: the score of row {i} is {scores[i]} ({bad.size} of {scores.size} rows not finite, "
                         f"rows {bad[:8].tolist()}; prompt {prompts[i][:60]!r}): a reward must be a finite number")
    return scores


def train_reward_model(init_path: Path | str, rows: list[dict], out: Path | str, epochs: int = 2,
                       learning_rate: float = 1e-3, batch_size: int = 32, seed: int = 0, max_length: int = 64) -> Path:
    """Fit a scalar reward model (initialised from the causal LM at ``init_path``) on plain-string
    preference ``rows`` with :func:`bradley_terry_loss`; save it to ``out`` (built whole, then renamed)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if not rows:
        raise ValueError("the reward model needs at least one preference row")
    torch.manual_seed(seed)
    init_path = checked_source(init_path, "reward model's initial model")
    tokenizer = AutoTokenizer.from_pretrained(init_path)
    tokenizer.truncation_side = "left"  # a long prompt loses its beginning, never the answer
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the new scalar head is expected to be missing from the checkpoint
    try:
        model = AutoModelForSequenceClassification.from_pretrained(init_path, num_labels=1)
    finally:
        hf_logging.set_verbosity(verbosity)
    if model.config.pad_token_id is None and tokenizer.pad_token_id is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
    own = reads_own_padding(model, tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    order, rng = list(range(len(rows))), random.Random(seed)
    model.train()
    for _ in range(epochs):
        rng.shuffle(order)
        for lo in range(0, len(order), batch_size):
            part = [rows[i] for i in order[lo:lo + batch_size]]
            seqs = encode_chats(tokenizer, [r["prompt"] for _ in (0, 1) for r in part],
                                [r[side] for side in ("chosen", "rejected") for r in part], max_length)
            scores = batch_scores(model, tokenizer, seqs, "cpu", own)
            loss = bradley_terry_loss(scores[:len(part)], scores[len(part):]).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with building_folder(out) as scratch:
        model.save_pretrained(scratch)
        tokenizer.save_pretrained(scratch)
    return Path(out)
