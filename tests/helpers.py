"""Helpers shared by the engine tests (import them with ``from helpers import ...``)."""
import contextlib

import torch

from prefalign_lite import world
from prefalign_lite.engine import models
from prefalign_lite.world import tiny


def perturbed_policy(seed: int = 0, scale: float = 0.02):
    """``(sft_path, policy, reference, tokenizer)``: the cached SFT model as the reference and a
    randomly perturbed copy of it as a policy that differs from its reference."""
    path = tiny.sft_model_path()
    policy, tok = models.load_pretrained(path)
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(scale * torch.randn_like(p))
    ref, _ = models.load_pretrained(path)
    ref.eval()
    return path, policy, ref, tok


def reference_of(ref):
    """The trainer's ``reference`` argument for a plain model: a no-grad context giving it."""
    @contextlib.contextmanager
    def use():
        with torch.no_grad():
            yield ref
    return use


def plain_rows(n: int, seed: int) -> list[dict]:
    """``n`` rater-labelled pairs as plain strings."""
    return [{"prompt": r["prompt"], "chosen": r["chosen"][1]["content"], "rejected": r["rejected"][1]["content"]}
            for r in world.preference_rows(world.make_tasks(n, seed=seed), world.Annotator(), seed=seed)]


def perturb_lora_b(model, std: float = 0.05, seed: int = 0) -> None:
    """Give every LoRA ``B`` matrix random values (they start at zero), so adapters change the output."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, std)
