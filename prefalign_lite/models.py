"""One frozen base, every iterate a LoRA adapter on it (DESIGN: "iterations as adapters").

The base (4-bit NF4 through bitsandbytes, or full precision) holds ``pi_init``; iterate ``t`` is the
adapter named ``iter{t}``. Disabling adapters gives ``pi_init``; switching adapters gives
``pi_{t-1}``, ``pi_{t-2}``, ... for SPA's judge and SeRA's ensemble without a second copy of the
base in memory. Adapters are saved with ``save_pretrained`` so a run can resume at any iteration.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import torch

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass(frozen=True)
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    targets: tuple[str, ...] = tuple(LORA_TARGETS)


def load_base(path_or_id: str | Path, four_bit: bool = True, dtype: torch.dtype = torch.float32):
    """A causal LM by local path or hub id (one ``from_pretrained`` call for both), frozen;
    in 4-bit NF4 when ``four_bit`` (compute in ``dtype``)."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    kwargs = {"dtype": dtype}
    if four_bit:
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype, bnb_4bit_use_double_quant=True)
    model = AutoModelForCausalLM.from_pretrained(str(path_or_id), **kwargs)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class IterateAdapters:
    """The iterates of a self-improving run as named LoRA adapters on one base model."""

    def __init__(self, base, lora: LoraSettings = LoraSettings()):
        self.base, self.lora, self.model = base, lora, None

    def _config(self):
        from peft import LoraConfig

        return LoraConfig(r=self.lora.r, lora_alpha=self.lora.alpha, lora_dropout=self.lora.dropout,
                          target_modules=list(self.lora.targets), task_type="CAUSAL_LM")

    @staticmethod
    def name(t: int) -> str:
        return f"iter{t}"

    @property
    def names(self) -> list[str]:
        return [] if self.model is None else list(self.model.peft_config)

    def create(self, t: int, init_from: int | None = None) -> None:
        """Add adapter ``iter{t}`` (fresh, i.e. equal to the base, or a copy of ``iter{init_from}``)
        and make it the one that trains."""
        from peft import get_peft_model

        if self.model is None:
            self.model = get_peft_model(self.base, self._config(), adapter_name=self.name(t))
        else:
            if self.name(t) in self.names:  # re-running an iteration replaces its adapter
                self.model.delete_adapter(self.name(t))
            self.model.add_adapter(self.name(t), self._config())
        if init_from is not None:
            src, dst = self.name(init_from), self.name(t)
            state = {k: v for k, v in self.model.state_dict().items() if f".{src}." in k}
            self.model.load_state_dict({k.replace(f".{src}.", f".{dst}."): v for k, v in state.items()}, strict=False)
        self.activate(t)

    def activate(self, t: int) -> None:
        """Make ``iter{t}`` the active adapter; only its weights require gradients."""
        self.model.set_adapter(self.name(t))
        for n, p in self.model.named_parameters():
            p.requires_grad_(f".{self.name(t)}." in n)

    @contextlib.contextmanager
    def use(self, t: int | None):
        """Temporarily evaluate as iterate ``t`` (``None`` = the base, ``pi_init``); no gradients."""
        active = self.model.active_adapter
        ctx = self.model.disable_adapter() if t is None else contextlib.nullcontext()
        if t is not None:
            self.model.set_adapter(self.name(t))
        try:
            with ctx, torch.no_grad():
                yield self.model
        finally:
            self.model.set_adapter(active)

    def save(self, t: int, folder: Path) -> Path:
        """Save adapter ``iter{t}`` to ``folder/iter{t}`` (written to a temporary name, then renamed)."""
        import os
        import shutil

        target, scratch = Path(folder) / self.name(t), Path(folder) / f".{self.name(t)}.partial"
        shutil.rmtree(scratch, ignore_errors=True)
        self.model.save_pretrained(str(scratch), selected_adapters=[self.name(t)])
        saved = scratch / self.name(t) if (scratch / self.name(t)).exists() else scratch
        shutil.rmtree(target, ignore_errors=True)
        os.replace(saved, target)
        shutil.rmtree(scratch, ignore_errors=True)
        return target

    def load(self, t: int, folder: Path) -> None:
        """Load a saved adapter as ``iter{t}`` (to resume a run)."""
        from peft import PeftModel

        path = str(Path(folder) / self.name(t))
        if self.model is None:
            self.model = PeftModel.from_pretrained(self.base, path, adapter_name=self.name(t), is_trainable=True)
        else:
            self.model.load_adapter(path, adapter_name=self.name(t), is_trainable=True)
        self.activate(t)
