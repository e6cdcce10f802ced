"""The one backoff of the mesh: exponential with jitter, so that replicas and items retrying together spread
out instead of retrying in step. Used by plan steps, outbox deliveries and the outcome feed."""

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    initial_seconds: float = 1.0
    max_seconds: float = 30.0
    multiplier: float = 2.0

    def ceiling(self, attempts_made: int) -> float:
        """The longest wait after `attempts_made` failed attempts (1 or more)."""
        return min(self.max_seconds, self.initial_seconds * self.multiplier ** max(0, attempts_made - 1))

    def delay(self, attempts_made: int) -> float:
        """A wait drawn between half the ceiling and the ceiling."""
        return self.ceiling(attempts_made) * random.uniform(0.5, 1.0)
