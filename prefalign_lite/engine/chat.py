"""The chat template as text and ids: rendering a conversation (or saying why it cannot be), the
ids of a rendered text with the BOS token where the tokenizer adds one, and how many leading
tokens a left cut keeps."""
from __future__ import annotations

import weakref

_ADDS_BOS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class TemplateRenderError(ValueError):
    """The tokenizer has no chat template, or its template fails to render a user/assistant turn."""


def adds_bos(tokenizer) -> bool:
    """Whether ``tokenizer`` puts its BOS token in front of a text when asked for special tokens
    (``add_bos_token``, or a post-processor that adds it): Llama's and Mistral's tokenizers do, and
    their chat templates (Zephyr's) may not write it themselves."""
    cached = _ADDS_BOS.get(tokenizer)
    if cached is None:
        bos = getattr(tokenizer, "bos_token_id", None)
        cached = bos is not None and tokenizer("a", add_special_tokens=True)["input_ids"][:1] == [bos] \
            and tokenizer("a", add_special_tokens=False)["input_ids"][:1] != [bos]
        _ADDS_BOS[tokenizer] = cached
    return cached


def text_ids(tokenizer, text: str) -> list[int]:
    """The token ids of a text the chat template rendered: no special tokens added, except the BOS
    token where the tokenizer would add one and the text does not start with it already (a template
    such as Llama-3's writes ``<|begin_of_text|>`` itself; Zephyr's does not, and the model was
    trained with it)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if adds_bos(tokenizer) and ids[:1] != [tokenizer.bos_token_id]:
        ids = [tokenizer.bos_token_id] + ids
    return ids


def bos_kept(tokenizer) -> int:
    """How many leading prompt tokens a left cut keeps: 1 (the BOS token) where :func:`adds_bos`."""
    return 1 if tokenizer is not None and adds_bos(tokenizer) else 0


def render_chat(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> str:
    """The conversation as text through the tokenizer's chat template; :class:`TemplateRenderError`
    naming the tokenizer when it has no template or the template fails on the turns."""
    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    if not getattr(tokenizer, "chat_template", None):
        raise TemplateRenderError(f"the tokenizer {name!r} has no chat template (tokenizer.chat_template is not set): "
                                  "every prompt and answer is rendered through it; set one")
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    except Exception as exc:   # jinja's TemplateError, or the template's own raise_exception
        raise TemplateRenderError(f"the chat template of {name!r} fails to render a {'/'.join(m['role'] for m in messages)} "
                                  f"conversation: {type(exc).__name__}: {exc}") from None
