"""What every iterative fit records: loss and PSNR against solver seconds (``FitHistory``),
timed by a clock that leaves out the monitoring (``Stopwatch``)."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class FitHistory:
    """Loss and PSNR (when a target is known) against wall-clock seconds."""

    seconds: list = field(default_factory=list)
    step: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    psnr: list = field(default_factory=list)

    def add(self, seconds, step, loss, value=None):
        self.seconds.append(float(seconds)); self.step.append(int(step)); self.loss.append(float(loss))
        self.psnr.append(None if value is None else float(value))

    def as_dict(self):
        return {"seconds": self.seconds, "step": self.step, "loss": self.loss, "psnr": self.psnr}


class Stopwatch:
    """Wall-clock seconds since creation, leaving out the time spent inside ``paused()``
    (monitoring: PSNR against a target, objective values), so fit times are the solver's."""

    def __init__(self):
        self.start, self.excluded = time.perf_counter(), 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.start - self.excluded

    @contextmanager
    def paused(self):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.excluded += time.perf_counter() - t
