"""Loading models by path or hub id, and one frozen base with every iterate a LoRA adapter on it.

The base (4-bit NF4 through bitsandbytes, or full precision) holds ``pi_init``; iterate ``t`` is the
adapter named ``iter{t}``. Disabling adapters gives ``pi_init``; switching adapters gives
``pi_{t-1}``, ``pi_{t-2}``, ... for SPA's judge and SeRA's ensemble without a second copy of the
base in memory. Adapters are saved with ``save_pretrained`` so a run can resume at any iteration.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.files import building_folder

from .checkpoints import check_architecture, check_vocabulary, checked_source

log = logging.getLogger(__name__)

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass(frozen=True)
class LoraSettings:
    """The shape of every iterate's LoRA adapter."""

    r: int = 16                    # rank of each adapter's update
    alpha: int = 32                # scale: the update is multiplied by alpha / r
    dropout: float = 0.0           # dropout on the adapter's input while training
    targets: tuple[str, ...] = tuple(LORA_TARGETS)   # projections that get an adapter (every attention and MLP one)


def default_device() -> torch.device:
    """CUDA (the current GPU) when one is visible, else the CPU."""
    return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")


def card_has_bf16() -> bool:
    """Whether the visible CUDA card computes in bfloat16 (compute capability 8.0 or later; a T4,
    7.5, does not). Without a visible card (arguments built for one elsewhere) it is assumed."""
    return not torch.cuda.is_available() or bool(torch.cuda.is_bf16_supported())


def bf16_supported(device: torch.device | str | None = None) -> bool:
    """Whether ``device`` computes in bfloat16: a CUDA card that :func:`card_has_bf16`; a CPU does,
    but slowly."""
    device = torch.device(device or default_device())
    return device.type != "cuda" or card_has_bf16()


def default_dtype(device: torch.device | str | None = None) -> torch.dtype:
    """The compute dtype for a device: bfloat16 on CUDA (float16 on a card without bf16), float32 on
    a CPU (bf16 matmuls are slower there)."""
    device = torch.device(device or default_device())
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if bf16_supported(device) else torch.float16


def low_precision(model) -> bool:
    """Whether ``model`` holds quantised or half-precision weights (a 4-bit base, a bf16 copy): what
    autocast is for. A float32 model (the embedded world's 0.38M one) stays in float32."""
    return any(p.dtype in (torch.bfloat16, torch.float16, torch.uint8) for p in model.parameters())


def autocast_for(device, enabled: bool | None = None, model=None):
    """Half-precision autocast (:func:`default_dtype`) for a forward pass on ``device`` (its type or a
    ``torch.device``): by default on CUDA when ``model`` is :func:`low_precision` (or not given), off on
    a CPU and for a float32 model (``enabled`` overrides). Every forward of a 4-bit base on a GPU runs
    under it: outside autocast, peft's 4-bit LoRA layers cast their inputs to float32, which doubles
    the activations of a pass and makes each LoRA matmul a float32 one."""
    device = torch.device(device) if not isinstance(device, torch.device) else device
    on = (device.type == "cuda" and (model is None or low_precision(model))) if enabled is None else enabled
    return torch.autocast(device.type, dtype=default_dtype(device)) if on else contextlib.nullcontext()


def load_pretrained(path_or_id: str | Path, tokenizer_only: bool = False, **kwargs):
    """``(model, tokenizer)`` by local path or hub id, through ``from_pretrained`` (``model`` is
    ``None`` with ``tokenizer_only``). The tokenizer pads on the left, for generation; one without
    a pad token pads with its end token (padding is masked anyway). A local path that does not
    exist, a reward model's checkpoint, or a tokenizer larger than the model's embeddings is refused
    naming the path."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if not log.isEnabledFor(logging.INFO):
        hf_logging.disable_progress_bar()  # no loading bars in notebooks unless logging asks for them
    source = checked_source(path_or_id, "model", needs="" if tokenizer_only else "config.json")
    if not tokenizer_only:
        check_architecture(AutoConfig.from_pretrained(source), f"model {str(path_or_id)!r}", causal=True)
    tokenizer = AutoTokenizer.from_pretrained(source)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = None if tokenizer_only else AutoModelForCausalLM.from_pretrained(source, **kwargs)
    if model is not None:
        check_vocabulary(model, tokenizer, f"model {str(path_or_id)!r}")
    return model, tokenizer


def base_load_kwargs(four_bit: bool = True, dtype: torch.dtype | None = None, device=None) -> dict:
    """``from_pretrained`` keyword arguments for a base on ``device`` (default :func:`default_device`):
    4-bit NF4 with double quantisation when ``four_bit``, compute in ``dtype`` (default
    :func:`default_dtype`). On CUDA the weights are placed (and quantised) on the GPU directly."""
    from transformers import BitsAndBytesConfig

    device = torch.device(device or default_device())
    dtype = dtype or default_dtype(device)
    kwargs: dict = {"dtype": dtype}
    if four_bit:
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype, bnb_4bit_use_double_quant=True)
    if device.type != "cpu":
        kwargs["device_map"] = {"": device.index if device.index is not None else device.type}
    return kwargs


def freeze(model):
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def load_base(path_or_id: str | Path, four_bit: bool = True, dtype: torch.dtype | None = None, device=None):
    """A causal LM by local path or hub id (one ``from_pretrained`` call for both), frozen, on
    ``device`` (default: the GPU if any, else the CPU); in 4-bit NF4 when ``four_bit``; compute in
    ``dtype`` (default bfloat16 on a GPU, float32 on a CPU)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    source = checked_source(path_or_id, "base model")
    check_architecture(AutoConfig.from_pretrained(source), f"base model {str(path_or_id)!r}", causal=True)
    model = AutoModelForCausalLM.from_pretrained(source, **base_load_kwargs(four_bit, dtype, device))
    return keep_4bit_differentiable(freeze(model))


def keep_4bit_differentiable(model):
    """Stop bitsandbytes (0.50) from repacking 4-bit weights for CPU inference. On its first
    no-grad forward in eval mode a CPU ``Linear4bit`` converts its weight to an AVX512-bf16 layout,
    and from then on every forward, training included, runs ``gemv_4bit``, which has no autograd
    kernel: the gradient reaching every LoRA adapter below the top layer is wrong (measured: a
    first-layer adapter's directional derivative -0.0009 by autograd against 0.055 by finite
    differences). Without the repacking the dequantise-then-matmul path is used, whose backward is
    right, at the same sampling speed on the tiny model."""
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
    return model


def unpack_cpu_4bit(model) -> int:
    """Undo bitsandbytes' CPU inference layout of 4-bit weights; returns how many layers it touched.

    The safety net behind :func:`keep_4bit_differentiable` for bases not loaded by
    :func:`load_base`: once re-laid out, training gets wrong gradients below the top layer and
    fails outright for layers with a bias (Qwen2's q/k/v: "a view of a leaf Variable ...
    in-place"), so the trainer calls this before it trains."""
    touched = 0
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if type(weight).__name__ == "Params4bit" and getattr(weight.quant_state, "packing_format_for_cpu", False):
            from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse

            weight.data, weight.quant_state = _convert_weight_packed_for_cpu_inverse(weight.data, weight.quant_state)
            touched += 1
    return touched


def _dense_weight(module) -> torch.Tensor:
    """The weight of a linear layer as a dense tensor (a 4-bit one dequantised)."""
    weight = module.weight
    if type(weight).__name__ != "Params4bit":
        return weight.detach()
    import bitsandbytes as bnb

    data, state = weight.data, weight.quant_state
    if getattr(state, "packing_format_for_cpu", False):  # bitsandbytes' CPU inference layout: undo on a copy
        from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse

        data, state = _convert_weight_packed_for_cpu_inverse(data.clone(), copy.deepcopy(state))
    return bnb.functional.dequantize_4bit(data, state)


@torch.no_grad()
def merged_copy(model, dtype: torch.dtype = torch.bfloat16):
    """A plain (unquantised) copy of ``model`` in ``dtype`` with its active LoRA adapter merged into
    the weights: ``W = dequant(W_base) + scale * B @ A``. For sampling: one dense matmul per
    projection instead of a 4-bit one plus the adapter's two. The copy shares nothing with
    ``model`` (which is left as it was); about 2 bytes per parameter in bfloat16, filled layer by
    layer (no second full copy in between)."""
    from transformers import AutoModelForCausalLM

    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = copy.deepcopy(lm.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    with torch.device(next(lm.parameters()).device):
        merged = AutoModelForCausalLM.from_config(config, dtype=dtype)
    targets = dict(merged.named_parameters())  # tied weights appear once
    filled: set[str] = set()

    def put(name: str, value: torch.Tensor) -> None:
        if name not in targets:
            if name.endswith("lm_head.weight") and getattr(config, "tie_word_embeddings", False):
                return
            raise RuntimeError(f"merged copy: the new model has no parameter {name!r}")
        targets[name].copy_(value.to(dtype))
        filled.add(name)

    for name, module in lm.named_modules():
        if ".base_layer" in name or "lora_" in name:
            continue
        if hasattr(module, "base_layer") and hasattr(module, "get_delta_weight"):  # a LoRA layer
            base = module.get_base_layer()
            weight = _dense_weight(base).to(torch.float32)
            if not module.disable_adapters:
                for adapter in module.active_adapters:
                    if adapter in module.lora_A:
                        weight = weight + module.get_delta_weight(adapter).to(torch.float32)
            put(f"{name}.weight", weight)
            if base.bias is not None:
                put(f"{name}.bias", base.bias.detach())
        elif type(getattr(module, "weight", None)).__name__ == "Params4bit":
            put(f"{name}.weight", _dense_weight(module))
            if module.bias is not None:
                put(f"{name}.bias", module.bias.detach())
        else:
            for pname, p in module.named_parameters(recurse=False):
                put(f"{name}.{pname}" if name else pname, p.detach())
    if set(targets) - filled:
        raise RuntimeError(f"merged copy: weights not filled {sorted(set(targets) - filled)[:5]}")
    merged.generation_config = copy.deepcopy(lm.generation_config)
    return freeze(merged.eval())


class IterateAdapters:
    """The iterates of a self-improving run as named LoRA adapters on one base model.

    With ``resident = k`` at most ``k`` adapters stay on the base's device; the least recently used
    others are parked in CPU memory and brought back when they are used (a notebook that trains a
    dozen 7B iterates would otherwise hold 13 x 168 MB of adapters on the GPU). ``None`` keeps all."""

    def __init__(self, base, lora: LoraSettings = LoraSettings(), resident: int | None = None):
        if resident is not None and (not isinstance(resident, int) or resident < 1):
            raise ValueError(f"resident must be an integer >= 1 or None, got {resident!r}")
        self.base, self.lora, self.model, self.resident = base, lora, None, resident
        self.parked: set[str] = set()
        self._recent: list[str] = []   # adapter names on the device, least recently used first

    def _adapter_modules(self, name: str) -> list:
        return [d[name] for m in self._tuner_layers() for d in (getattr(m, "lora_A", {}), getattr(m, "lora_B", {}))
                if name in d]

    def _bring(self, name: str) -> None:
        """Adapter ``name`` on the base's device (the most recently used); park the least recently
        used others past ``resident``."""
        if self.resident is None or self.model is None:
            return
        device = next(self.base.parameters()).device
        if name in self.parked:
            for module in self._adapter_modules(name):
                module.to(device)
            self.parked.discard(name)
        self._recent = [n for n in self._recent if n != name and n in self.names] + [name]
        active = self.model.active_adapter
        while len(self._recent) > self.resident:
            victim = next((n for n in self._recent if n not in (name, active)), None)
            if victim is None:
                break
            for module in self._adapter_modules(victim):
                module.to("cpu")
            self._recent.remove(victim)
            self.parked.add(victim)

    def adapter_config(self):
        """A fresh peft ``LoraConfig`` of :attr:`lora`: the settings of every adapter :meth:`create` adds
        (the bench hands one to TRL for TRL's own adapter)."""
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
            self.model = get_peft_model(self.base, self.adapter_config(), adapter_name=self.name(t))
        else:
            if self.name(t) in self.names:  # re-running an iteration replaces its adapter
                self.model.delete_adapter(self.name(t))
                self.parked.discard(self.name(t))
            self.model.add_adapter(self.name(t), self.adapter_config())
        if init_from is not None:
            self._bring(self.name(init_from))
            src, dst = self.name(init_from), self.name(t)
            # parameter by parameter: ``state_dict()`` would also re-pack every 4-bit weight (bitsandbytes'
            # CPU backend keeps a faster layout for inference and undoes it when saving)
            params = dict(self.model.named_parameters())
            with torch.no_grad():
                for name, p in params.items():
                    if f".{src}." in name:
                        params[name.replace(f".{src}.", f".{dst}.")].copy_(p)
        self.activate(t)

    def activate(self, t: int) -> None:
        """Make ``iter{t}`` the active adapter; only its weights require gradients."""
        self._bring(self.name(t))
        self.model.set_adapter(self.name(t))
        for n, p in self.model.named_parameters():
            p.requires_grad_(f".{self.name(t)}." in n)

    def _tuner_layers(self) -> list:
        """peft's adapter layers (fixed once the first adapter exists: later adapters live in them)."""
        from peft.tuners.tuners_utils import BaseTunerLayer

        if getattr(self, "_layers_of", None) is not self.model:
            self._layers = [m for m in self.model.modules() if isinstance(m, BaseTunerLayer)]
            self._layers_of = self.model
        return self._layers

    @contextlib.contextmanager
    def use(self, t: int | None):
        """Temporarily evaluate as iterate ``t`` (``None`` = the base, ``pi_init``); no gradients.

        The same switch as peft's ``set_adapter`` / ``disable_adapter``, made on each adapter layer
        only: those also reset ``requires_grad`` on every adapter of every layer and inspect the
        whole model, several milliseconds per switch once a run holds dozens of iterates, and a
        training step switches to its reference once (tested against peft's own switch)."""
        if t is not None and self.name(t) not in self.names:
            raise KeyError(f"no iterate {t} (adapters: {self.names})")
        if t is not None:
            self._bring(self.name(t))
        layers = self._tuner_layers()
        saved = [(m._active_adapter, m._disable_adapters) for m in layers]
        was_disabled = self.model._adapters_disabled
        try:
            for m in layers:
                if t is None:
                    m._disable_adapters = True
                else:
                    m._active_adapter = [self.name(t)]
            self.model._adapters_disabled = t is None
            with torch.no_grad():
                yield self.model
        finally:
            for m, (active, disabled) in zip(layers, saved):
                m._active_adapter, m._disable_adapters = active, disabled
            self.model._adapters_disabled = was_disabled

    def save(self, t: int, folder: Path) -> Path:
        """Save adapter ``iter{t}`` to ``folder/iter{t}`` (built under a temporary name, then renamed)."""
        target = Path(folder) / self.name(t)
        with building_folder(target) as scratch:
            self.model.save_pretrained(str(scratch), selected_adapters=[self.name(t)])
            nested = scratch / self.name(t)   # peft nests a non-default adapter in a folder of its name
            if nested.exists():
                for item in nested.iterdir():
                    shutil.move(str(item), scratch / item.name)
                nested.rmdir()
        return target

    def merged(self, t: int | None = None, dtype: torch.dtype = torch.bfloat16, *, base: bool = False):
        """A dense ``dtype`` copy of iterate ``t`` (``None``: the active one; ``base``: the base
        itself, adapters off) for fast sampling: :func:`merged_copy`. The adapters and the base are
        left as they were."""
        if base:
            with self.use(None):
                return merged_copy(self.model, dtype)
        active = self.model.active_adapter
        if t is not None:
            self._bring(self.name(t))
            self.model.set_adapter(self.name(t))
        try:
            return merged_copy(self.model, dtype)
        finally:
            self.model.set_adapter(active)
            for n, p in self.model.named_parameters():
                p.requires_grad_(f".{active}." in n)

    def load(self, t: int, folder: Path) -> None:
        """Load a saved adapter as ``iter{t}`` (to resume a run)."""
        from peft import PeftModel

        path = str(Path(folder) / self.name(t))
        if self.model is None:
            self.model = PeftModel.from_pretrained(self.base, path, adapter_name=self.name(t), is_trainable=True)
        else:
            self.model.load_adapter(path, adapter_name=self.name(t), is_trainable=True)
        self.activate(t)
