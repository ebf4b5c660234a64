"""Building the quirk-faithful stand-ins of :mod:`.artefacts`: tiny models (two thin layers) of the
real architecture whose embedding keeps the real vocabulary size, each with its artefact's
tokenizer, chat template, special-token settings and generation defaults, trained just enough to
behave (the policies write on-topic answers and stop at their end token; the reward models prefer
the chosen answers), and the UltraFeedback-binarized stand-in (:mod:`.standin_data`).

A tokenizer holds about a thousand ids while the embedding has 32,000 or 151,936 rows, as Qwen's
real embedding is padded past its tokenizer. The padded rows share one output vector, trained as the
whole padded block in the softmax (its logit plus ``log(rows)``), so the saved model is exactly the
one trained: its full-vocabulary softmax puts almost no mass on ids the tokenizer does not have.

Each artefact is built once into ``<cache>/standin-<name>-<key>``, the key a hash of everything that
decides it (the artefact, the build settings, the rows, :data:`BUILD_VERSION`), under a temporary
name renamed when complete. ``full_size=True`` gives Qwen2.5-0.5B's real shape, randomly initialised
and untrained (for the real-size run on a CPU).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import random
import time
from pathlib import Path

from ..core.files import building_folder, cache_root, write_text
from ..engine.encoding import encode
from ..engine.reward_model import bradley_terry_loss, encode_chats, last_token_scores
from .artefacts import MODELS, ModelArtefact
from .standin_data import save_ultrafeedback, ultrafeedback_splits
from .standin_tokenizers import save_tokenizer
from .standins import StandinSettings, fit, padded_batch, reward_triples

log = logging.getLogger(__name__)
BUILD_VERSION = 2
# Qwen2.5-0.5B's published sizes (config.json): the full-size random stand-in.
QWEN25_05B_SHAPE = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                        num_key_value_heads=2)


# The faithful builds' settings. They differ from StandinSettings' defaults (the first stand-ins') in
# longer training sequences, 300 steps for each model, and a higher reward-model learning rate, as
# these reward models start from random weights.
FAITHFUL_SETTINGS = StandinSettings(max_length=160, policy_steps=300, reward_steps=300, reward_learning_rate=2e-3)
_UNREAD = ("n_rows", "reward_extra_pairs")   # settings of the first stand-ins only: not in the key


def _texts(splits: dict[str, list[dict]]) -> list[str]:
    return [t for rows in splits.values() for r in rows
            for t in (r["prompt"], r["chosen"][-1]["content"], r["rejected"][-1]["content"])]


def _tokenizer(artefact: ModelArtefact, folder: Path, splits: dict, settings: StandinSettings) -> dict:
    conversations = [(r["prompt"], r[side][-1]["content"]) for r in splits["train_prefs"][:200]
                     for side in ("chosen", "rejected")]
    return save_tokenizer(artefact, _texts(splits), folder, settings.tokenizer_vocab, conversations)


def _ids(special: dict, value):
    if isinstance(value, list):
        return [special[v] for v in value]
    return special[value] if isinstance(value, str) else value


def _config(artefact: ModelArtefact, special: dict, settings: StandinSettings):
    from transformers import AutoConfig

    model_type = {"Qwen2": "qwen2", "Mistral": "mistral", "Llama": "llama", "Qwen3": "qwen3"}[
        next(k for k in ("Qwen2", "Qwen3", "Mistral", "Llama") if artefact.architecture.startswith(k))]
    shape = QWEN25_05B_SHAPE if settings.full_size else dict(
        hidden_size=settings.hidden_size, intermediate_size=settings.intermediate_size,
        num_hidden_layers=settings.num_layers, num_attention_heads=settings.num_heads,
        num_key_value_heads=settings.num_kv_heads)
    extra = {k: _ids(special, v) for k, v in artefact.config.items()}
    if model_type == "qwen3":
        extra["head_dim"] = shape["hidden_size"] // shape["num_attention_heads"]
    eos = [special[t] for t in artefact.config_eos]
    config = AutoConfig.for_model(model_type, vocab_size=artefact.vocab_size,
                                  tie_word_embeddings=artefact.tie_word_embeddings,
                                  eos_token_id=eos[0] if len(eos) == 1 else eos,
                                  pad_token_id=special[artefact.pad_token] if artefact.config_pad else None,
                                  architectures=[artefact.architecture], **shape, **extra)
    config.pad_token_id = special[artefact.pad_token] if artefact.config_pad else None
    return config


def _generation_config(artefact: ModelArtefact, special: dict):
    from transformers import GenerationConfig

    values = {k: _ids(special, v) for k, v in (artefact.generation_config or {}).items()}
    return GenerationConfig(**values) if values else None


def _lm_loss(model, n_real: int, junk, batch, examples, pad_id: int):
    """Cross-entropy of the completion tokens over the tokenizer's ``n_real`` ids plus the padded
    block of the embedding as one entry (see the module doc), and at every position the log of the
    share the padded block does not take, ``-log(1 - p_padded)``: the model learns never to emit an
    id its tokenizer does not have, prompt positions included."""
    import torch
    import torch.nn.functional as F

    ids, mask = padded_batch([examples[i][0] for i in batch], pad_id)
    labels, _ = padded_batch([examples[i][1] for i in batch], -100)
    hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
    h = hidden[mask[:, 1:].bool()]
    targets = labels[:, 1:][mask[:, 1:].bool()]
    real = h @ model.lm_head.weight[:n_real].T
    padded = h @ junk + math.log(model.config.vocab_size - n_real)
    keep = targets != -100
    answer = F.cross_entropy(torch.cat([real[keep], padded[keep, None]], dim=1), targets[keep])
    return answer + F.softplus(padded - torch.logsumexp(real, dim=1)).mean()


def _settle_padded_rows(model, n_real: int, junk, examples, pad_id: int, batch_size: int, steps: int = 300) -> float:
    """With the model fixed, fit the padded block's vector alone (a convex problem) so that it takes
    no share at any position of the training text; returns the largest share left."""
    import torch

    states, scale = [], []
    with torch.no_grad():
        for lo in range(0, len(examples), batch_size):
            ids, mask = padded_batch([e[0] for e in examples[lo:lo + batch_size]], pad_id)
            h = model.model(input_ids=ids, attention_mask=mask).last_hidden_state[mask.bool()]
            states.append(h)
            scale.append(torch.logsumexp(h @ model.lm_head.weight[:n_real].T, dim=1))
    h, lse = torch.cat(states), torch.cat(scale)
    offset = math.log(model.config.vocab_size - n_real)
    opt = torch.optim.Adam([junk], lr=0.05)
    for _ in range(steps):
        loss = torch.nn.functional.softplus(h @ junk + offset - lse + 8.0).mean()   # a margin of e^8
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(torch.sigmoid(h @ junk + offset - lse).max())


def build_policy(artefact: ModelArtefact, folder: Path, splits: dict, settings: StandinSettings) -> dict:
    """The causal LM of ``artefact``, SFT on ``train_sft``'s chosen answers through the kit's own
    encoding (prompt masked, cut from the left), saved with its tokenizer into ``folder``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    special = _tokenizer(artefact, folder, splits, settings)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(settings.seed)
    model = AutoModelForCausalLM.from_config(_config(artefact, special, settings))
    n_real, stats = len(tokenizer), {"tokenizer_ids": len(tokenizer), "vocab_size": artefact.vocab_size}
    if not settings.full_size:
        examples = []
        for r in splits["train_sft"]:
            head, tail = encode(tokenizer, r["prompt"], r["chosen"][-1]["content"])
            cut = settings.max_length
            examples.append(((head + tail)[-cut:], ([-100] * len(head) + tail)[-cut:]))
        junk = torch.nn.Parameter(torch.zeros(model.config.hidden_size))
        model.register_parameter("standin_padded_rows", junk)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        stats.update(fit(model, lambda b: _lm_loss(model, n_real, junk, b, examples, pad), len(examples),
                         settings.policy_steps, settings.policy_learning_rate, settings.batch_size, settings.seed))
        stats["padded_share"] = _settle_padded_rows(model, n_real, junk, examples, pad, settings.batch_size)
        with torch.no_grad():
            model.lm_head.weight[n_real:] = junk.detach()
        del model.standin_padded_rows
    generation = _generation_config(artefact, special)
    if generation is not None:
        model.generation_config = generation
    model.save_pretrained(folder)
    log.info("stand-in %s built: %s", artefact.standin, stats)
    return stats


def build_reward_model(artefact: ModelArtefact, folder: Path, splits: dict, settings: StandinSettings) -> dict:
    """The sequence classifier of ``artefact``, trained from random weights with the Bradley-Terry
    loss on ``train_prefs`` (plus as many pairs again: a fresh worse answer, or another topic's good
    one), reading each conversation through its own chat template; held-out accuracy on
    ``test_prefs``."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    special = _tokenizer(artefact, folder, splits, settings)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(settings.seed)
    config = _config(artefact, special, settings)
    config.num_labels = 1
    model = AutoModelForSequenceClassification.from_config(config)

    def encoded(rows, extra):
        triples = reward_triples(rows, extra, random.Random(settings.seed))
        return [encode_chats(tokenizer, [p, p], [w, lo], settings.max_length) for p, w, lo in triples]

    def rewards(pairs):
        seqs = [w for w, _ in pairs] + [lo for _, lo in pairs]
        ids, mask = padded_batch(seqs, 0)
        return last_token_scores(model, ids, mask).split(len(pairs))

    train, held = encoded(splits["train_prefs"], 1), encoded(splits["test_prefs"], 0)
    stats = fit(model, lambda b: bradley_terry_loss(*rewards([train[i] for i in b])).mean(), len(train),
                settings.reward_steps, settings.reward_learning_rate, settings.batch_size, settings.seed)
    with torch.no_grad():
        r_w, r_l = rewards(held)
    stats.update(heldout_pairs=len(held), heldout_accuracy=round(float((r_w > r_l).float().mean()), 4))
    model.save_pretrained(folder)
    log.info("stand-in %s built: %s", artefact.standin, stats)
    return stats


DATASET = "ultrafeedback_binarized"
FULL_SIZE_SUFFIX = "-full-size"


def names() -> list[str]:
    """Every stand-in name (after ``standin:``) this module builds."""
    return [*MODELS, MODELS["qwen2.5-0.5b-instruct"].standin + FULL_SIZE_SUFFIX, DATASET]


def _key(name: str, settings: StandinSettings) -> str:
    artefact = MODELS.get(name.removesuffix(FULL_SIZE_SUFFIX))
    read = {k: v for k, v in dataclasses.asdict(settings).items() if k not in _UNREAD}
    blob = json.dumps({"name": name, "artefact": dataclasses.asdict(artefact) if artefact else None,
                       "settings": read, "version": BUILD_VERSION,
                       "rows": ultrafeedback_splits(settings.seed)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def standin_path(name: str, root: Path | None = None, settings: StandinSettings = FAITHFUL_SETTINGS) -> Path:
    """The folder of stand-in ``name`` (see :func:`names`), built on first use (a few tens of seconds
    on two CPU cores for a model, a second for the dataset) and reused afterwards."""
    if name not in names():
        raise ValueError(f"unknown stand-in {name!r}; known: {names()}")
    if name.endswith(FULL_SIZE_SUFFIX):
        settings = dataclasses.replace(settings, full_size=True)
    target = (Path(root) if root else cache_root()) / f"standin-{name}-{_key(name, settings)}"
    if (target / "build_stats.json").exists():
        return target
    with building_folder(target, exist_ok=True) as scratch:   # another process may finish first
        start, splits = time.perf_counter(), ultrafeedback_splits(settings.seed)
        if name == DATASET:
            stats = {"rows": save_ultrafeedback(scratch, settings.seed)}
        else:
            artefact = MODELS[name.removesuffix(FULL_SIZE_SUFFIX)]
            build = build_policy if artefact.kind == "policy" else build_reward_model
            stats = build(artefact, scratch, splits, settings)
        stats["seconds"] = round(time.perf_counter() - start, 1)
        write_text(scratch / "build_stats.json", json.dumps(stats, indent=1))  # written last: marks it complete
    return target
