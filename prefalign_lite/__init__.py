"""prefalign-lite: a notebook-first kit for self-improving preference alignment (SPA, SeRA,
Sr-DPO and a distributionally robust DPO), every objective implemented once in
:mod:`prefalign_lite.objectives`."""
__version__ = "0.1.0"
