"""The papers' Algorithm 1s on one base model with iterates as LoRA adapters."""
