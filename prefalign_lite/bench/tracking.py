"""Live tensor bytes on a CPU, the way a GPU allocator would count them: a ``TorchDispatchMode`` that
sees every tensor an operator creates (forward, backward, recomputation) and follows its storage
until it is freed. It measures what :mod:`prefalign_lite.engine.memory` estimates, on a machine
without a GPU.

* ``peak`` / ``live``: bytes of storages created inside the mode and not yet freed (parameters and
  tensors made before it started are not counted, nor are views and in-place results, which share
  an input's storage; gradients are counted);
* ``largest(last_dim)``: the largest tensor created whose last dimension is ``last_dim`` (the
  vocabulary: are the logits ever materialised beyond one chunk?).
"""
from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary


class LiveBytes(TorchDispatchMode):
    """``with LiveBytes() as m: step()`` then ``m.peak``, ``m.live`` and ``m.largest(V)``."""

    def __init__(self, watch_last_dims: tuple[int, ...] = (), keep_peak: bool = False):
        super().__init__()
        self.live = self.peak = 0
        self.watch = set(watch_last_dims)
        self.largest_by_dim: dict[int, tuple[int, tuple[int, ...], str]] = {}
        self._storages = WeakIdKeyDictionary()
        self.keep_peak, self._alive, self.at_peak = keep_peak, {}, []   # (bytes, shape, dtype, operator) at the peak

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor) and t.device.type != "meta"}
        for t in tree_flatten(out)[0]:   # a view or an in-place result shares an input's storage: nothing new
            if isinstance(t, torch.Tensor) and t.device.type != "meta" and t.untyped_storage().data_ptr() not in inputs:
                self._track(t, str(func))
        return out

    def _track(self, t: torch.Tensor, op: str) -> None:
        if t.dim() and t.shape[-1] in self.watch:
            known = self.largest_by_dim.get(t.shape[-1])
            if known is None or t.numel() > known[0]:
                self.largest_by_dim[t.shape[-1]] = (t.numel(), tuple(t.shape), op)
        storage = t.untyped_storage()
        if storage in self._storages:
            return
        size, key = storage.nbytes(), id(storage)
        self._storages[storage] = weakref.ref(storage, lambda _, size=size, key=key: self._free(size, key))
        self.live += size
        if self.keep_peak:
            self._alive[key] = (size, tuple(t.shape), str(t.dtype).replace("torch.", ""), op)
        if self.live > self.peak:
            self.peak = self.live
            if self.keep_peak:
                self.at_peak = sorted(self._alive.values(), reverse=True)

    def _free(self, size: int, key: int) -> None:
        self.live -= size
        self._alive.pop(key, None)

    def largest(self, last_dim: int) -> tuple[int, tuple[int, ...], str] | None:
        """``(elements, shape, operator)`` of the largest tensor created with that last dimension."""
        return self.largest_by_dim.get(last_dim)
