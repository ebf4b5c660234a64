"""``python -m prefalign_lite bench``: the engine against TRL on randomly initialised models of real
shapes (:mod:`.benchmark`, :mod:`.shapes`, :mod:`.trl_dpo`). Nothing else in the package imports it."""
