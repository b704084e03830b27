"""A tiny name -> constructor registry, shared by the INR representations and the LIIF encoders.

    ENCODERS = Registry("encoder")

    @ENCODERS.register("unet3d")
    def _unet3d(...): ...

    ENCODERS.build("unet3d", ...)   # a typo gets one error naming the registered choices

A ``Registry`` is a ``dict``, so ``name in REGISTRY`` and ``sorted(REGISTRY)`` work as usual.
"""
from __future__ import annotations

from typing import Callable


class Registry(dict):
    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[Callable], Callable]:
        """Decorator: register ``ctor`` under ``name`` (a second registration of a name is refused)."""
        def wrap(ctor):
            if name in self:
                raise ValueError(f"{self.kind} {name!r} is registered already")
            self[name] = ctor
            return ctor
        return wrap

    def check(self, name: str) -> str:
        """``name`` if it is registered, else a ValueError naming the registered choices."""
        if name not in self:
            raise ValueError(f"unknown {self.kind} {name!r}; registered: {sorted(self)}")
        return name

    def build(self, name: str, *args, **kwargs):
        """Call the constructor registered under ``name``."""
        return self[self.check(name)](*args, **kwargs)
