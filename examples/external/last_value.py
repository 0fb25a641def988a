#!/usr/bin/env python3
"""The last-value (naive) predictor as an external predictor: mean = the last value, sd = sigma1 * sqrt(h).

The same arithmetic as prescale's built-in `LastValue` (agents/src/predictor/mod.rs), so a run with it equals a
run with the built-in one bit for bit (tests/external.rs): the proof that the protocol carries numbers exactly.
Standard library only.
"""

import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prescale_external import Residuals, serve  # noqa: E402


class LastValue:
    def __init__(self):
        self.last = None
        self.r = Residuals()

    def update(self, values):
        for y in values:
            if self.last is not None:
                self.r.push(y - self.last)
            self.last = y

    def forecast(self, horizon):
        if self.last is None:
            return None
        s = self.r.sd()
        return [self.last] * horizon, [s * math.sqrt(h) for h in range(1, horizon + 1)]


if __name__ == "__main__":
    serve(lambda hello: LastValue(), "last-value")
