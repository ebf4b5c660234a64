"""What a checkpoint on disk or a hub id must be before any weights load: a local path that exists
and holds a model (a LoRA adapter's folder says so), the right kind of model (a language model as
the policy, a sequence classifier as the reward model), and a tokenizer the model can embed. Each
refusal names the path and the role it was given for."""
from __future__ import annotations

import os
from pathlib import Path


class ModelPathError(FileNotFoundError, ValueError):
    """A model, tokenizer or judge named by a local path that does not exist or holds no model."""


def looks_like_path(name: str) -> bool:
    """Whether ``name`` is meant as a local path, not a hub id (``namespace/name``): it starts with
    ``/``, ``.`` or ``~``, holds a backslash, ``os.sep`` or a second ``/``, or its first part is a
    folder here (``runs/sft`` where ``runs/`` exists)."""
    return (name.startswith(("/", ".", "~")) or "\\" in name or os.sep in name.replace("/", "", 1)
            or ("/" in name and Path(name.split("/")[0]).is_dir()))


def checked_source(path_or_id: str | Path, what: str = "model", needs: str = "config.json") -> str:
    """``path_or_id`` for ``from_pretrained`` (``~`` expanded); a hub id passes unchanged. A
    :class:`ModelPathError` naming ``what`` and the path where it looks like a local path that does
    not exist, is a file, or is a folder without ``needs`` (a LoRA adapter's folder says so)."""
    name, path = str(path_or_id), Path(str(path_or_id)).expanduser()
    if not name.strip():
        raise ModelPathError(f"{what}: no path or hub id given (an empty name)")
    if not path.exists() and not looks_like_path(name):
        return name
    if not path.exists():
        raise ModelPathError(f"{what} {name!r}: no such file or folder ({path.resolve()} does not exist; a name with "
                             "a second '/', a leading '/', '.' or '~', or a first part that is a folder here is a local path)")
    if not path.is_dir():
        raise ModelPathError(f"{what} {name!r}: a file, not a folder saved with save_pretrained")
    files = sorted(p.name for p in path.iterdir())
    if needs and needs not in files:
        adapter = " (a LoRA adapter: give its base model)" if "adapter_config.json" in files else ""
        raise ModelPathError(f"{what} {name!r}: the folder has no {needs}{adapter}; it holds {files[:8]}"
                             + (f" and {len(files) - 8} more" if len(files) > 8 else ""))
    return str(path)


LM_HEADS = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")   # saved architectures of a language model


def check_architecture(config, what: str, causal: bool) -> None:
    """A ``ValueError`` naming ``what`` when the checkpoint's saved ``architectures`` are of the other
    kind: a sequence classifier (a reward model) where a causal LM is loaded, whose output head would
    be tied or random, or a causal LM where a reward model is loaded, whose score head would be random."""
    saved = list(getattr(config, "architectures", None) or [])
    ours, other = (LM_HEADS, ("ForSequenceClassification",)) if causal else (("ForSequenceClassification",), LM_HEADS)
    if saved and not any(a.endswith(ours) for a in saved) and any(a.endswith(other) for a in saved):
        kind = "a causal language model" if causal else "a reward model (a sequence classifier with a trained score head)"
        raise ValueError(f"{what}: the checkpoint is a {saved[0]}, not {kind}")


def check_vocabulary(model, tokenizer, what: str) -> None:
    """A ``ValueError`` naming ``what`` when the tokenizer has ids the model has no embedding for
    (the first such id would stop a forward pass with an ``IndexError``)."""
    rows = getattr(model.get_input_embeddings(), "num_embeddings", None) if hasattr(model, "get_input_embeddings") else None
    if rows is not None and len(tokenizer) > rows:
        raise ValueError(f"{what}: the tokenizer has {len(tokenizer)} tokens but the model embeds only {rows} "
                         "(a tokenizer of another model?)")
