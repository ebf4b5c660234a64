"""The training and inference engine, world-agnostic: models and LoRA iterates, pair encoding,
chunked log-probs, the preference trainer and its losses, sampling, reward models and preference
data loading. Nothing here knows which world it runs in."""
