"""The papers' algorithms on one base model with iterates as LoRA adapters (:mod:`.session`),
the data splits they start from, the rival judges, and the registry of experiments the notebooks
and the report share (:mod:`.experiments`)."""
