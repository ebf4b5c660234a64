"""Tokenizers for the stand-ins, trained here on the stand-in text with the ``tokenizers`` library and
saved in each real artefact's own layout, so that transformers loads them the way it loads the real
ones (a ``tokenizer_class`` of ``Qwen2Tokenizer`` or ``LlamaTokenizer`` makes transformers rebuild the
pipeline itself, as it does for the hub files):

* ``qwen2`` / ``qwen3``: NFC, Qwen2's splitting regex (newlines merge into one piece), byte-level BPE,
  no BOS, the added tokens of Qwen2.5 (and Qwen3's four more);
* ``llama-sp``: a sentencepiece-style BPE over "▁"-marked words with byte fallback (a newline is
  ``<0x0A>``), ``<unk>``/``<s>``/``</s>`` at ids 0-2, BOS added by the tokenizer (``add_bos_token``);
* ``llama3``: Llama-3's regex (digits in threes), byte-level BPE, its special tokens, BOS added by the
  post-processor, no pad token.
"""
from __future__ import annotations

import json
from pathlib import Path

from .artefacts import (LLAMA3_SPECIAL, LLAMA_SP_SPECIAL, QWEN25_PLAIN_ADDED, QWEN25_SPECIAL, QWEN3_PLAIN_ADDED,
                        ModelArtefact)

QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
BYTE_TOKENS = [f"<0x{b:02X}>" for b in range(256)]


def _byte_level(regex: str, texts: list[str], vocab_size: int, normalizer: bool, ignore_merges: bool = False):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    backend = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if normalizer:
        backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    backend.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return backend


def _sentencepiece_bpe(texts: list[str], vocab_size: int):
    """BPE over "▁"-prefixed words, the way sentencepiece learns Llama's vocabulary; characters
    outside it (the newline, which is left out of the training text) fall back to byte tokens."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    learner = Tokenizer(models.BPE())
    learner.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    learner.train_from_iterator([t.replace("\n", " ") for t in texts],
                                trainers.BpeTrainer(vocab_size=vocab_size - len(BYTE_TOKENS) - 3, show_progress=False))
    learned = json.loads(learner.to_str())["model"]
    vocab = {tok: i for i, tok in enumerate(LLAMA_SP_SPECIAL + BYTE_TOKENS)}
    for tok, _ in sorted(learned["vocab"].items(), key=lambda kv: kv[1]):
        vocab.setdefault(tok, len(vocab))
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in learned["merges"]]
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    backend.pre_tokenizer = None
    backend.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                         decoders.Strip(content=" ", left=1, right=0)])
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                           special_tokens=[("<s>", 1)])
    return backend


def _add(backend, special: list[str], plain: list[str] = ()) -> None:
    from tokenizers import AddedToken

    present = backend.get_vocab()
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special if t not in present])
    backend.add_tokens([AddedToken(t, special=False, normalized=False) for t in plain if t not in present])


def build_backend(artefact: ModelArtefact, texts: list[str], vocab_size: int):
    """The ``tokenizers.Tokenizer`` of ``artefact``'s family, trained on ``texts``."""
    from tokenizers import processors

    if artefact.tokenizer in ("qwen2", "qwen3"):
        backend = _byte_level(QWEN2_REGEX, texts, vocab_size, normalizer=True)
        _add(backend, QWEN25_SPECIAL, QWEN3_PLAIN_ADDED if artefact.tokenizer == "qwen3" else QWEN25_PLAIN_ADDED)
    elif artefact.tokenizer == "llama3":
        backend = _byte_level(LLAMA3_REGEX, texts, vocab_size, normalizer=False, ignore_merges=True)
        _add(backend, LLAMA3_SPECIAL)
        bos = backend.token_to_id("<|begin_of_text|>")
        backend.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                          special_tokens=[("<|begin_of_text|>", bos)])])
    elif artefact.tokenizer == "llama-sp":
        backend = _sentencepiece_bpe(texts, vocab_size)
        _add(backend, LLAMA_SP_SPECIAL)
    else:
        raise ValueError(f"{artefact.hub_id}: unknown tokenizer family {artefact.tokenizer!r}")
    return backend


def rendered(artefact: ModelArtefact, pairs: list[tuple[str, str]]) -> list[str]:
    """Conversations as ``artefact``'s chat template writes them (so the template's own markup, such
    as Zephyr's ``<|user|>``, is in the tokenizer's training text, as it is in the real vocabulary)."""
    import jinja2

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    template = env.from_string(artefact.chat_template)
    return [template.render(messages=[{"role": "user", "content": p}, {"role": "assistant", "content": a}],
                            bos_token=artefact.bos_token or "", eos_token=artefact.eos_token, add_generation_prompt=False)
            for p, a in pairs]


def save_tokenizer(artefact: ModelArtefact, texts: list[str], folder: Path, vocab_size: int = 1024,
                   conversations: list[tuple[str, str]] = ()) -> dict:
    """Train ``artefact``'s tokenizer on ``texts`` and on ``conversations`` rendered by its template,
    and write ``tokenizer.json`` and the published ``tokenizer_config.json`` (special tokens, their
    settings, the chat template) into ``folder``; returns ``{token: id}`` of the special tokens for
    the model's config."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    backend = build_backend(artefact, list(texts) + rendered(artefact, list(conversations)), vocab_size)
    backend.save(str(folder / "tokenizer.json"))
    config = {"bos_token": artefact.bos_token, "eos_token": artefact.eos_token, "pad_token": artefact.pad_token,
              **artefact.tokenizer_config, "chat_template": artefact.chat_template}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    names = set(LLAMA3_SPECIAL + LLAMA_SP_SPECIAL + QWEN25_SPECIAL + QWEN3_PLAIN_ADDED)
    return {t: i for t, i in backend.get_vocab().items() if t in names} | {"<size>": backend.get_vocab_size()}
