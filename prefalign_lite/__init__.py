"""prefalign-lite: a notebook-first kit for self-improving preference alignment (SPA, SeRA,
Sr-DPO and a distributionally robust DPO), every objective implemented once in
:mod:`prefalign_lite.objectives`."""
__version__ = "0.3.0"

import warnings as _warnings

# transformers and datasets import tqdm.auto, which warns in Jupyter when ipywidgets is absent;
# the kit's own progress bars are plain text, so the warning is only noise (and nbval sees stderr).
_warnings.filterwarnings("ignore", message="IProgress not found")
# peft 0.21 still calls transformers 5's deprecated `is_gradient_checkpointing` when adding an adapter.
_warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated")

import logging as _logging

# bitsandbytes' CPU backend tries to fetch an optional kernel from a model hub at import and logs a
# warning when it cannot (never reachable here); the kit does not use that kernel.
_logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(_logging.ERROR)
