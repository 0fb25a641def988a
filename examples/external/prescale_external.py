"""The prescale external-predictor protocol (JSON lines on stdin/stdout), for predictors written in Python.

A predictor is an object with two methods:

    update(values: list[float]) -> None         the values observed since the last call, one per step, in order
    forecast(horizon: int) -> (mean, sd) | None  `horizon` means and standard deviations (>= 0), or None for
                                                 "not enough history yet" (prescale then uses its reactive rule)

`serve(make)` runs the protocol: it reads the greeting, calls `make(hello)` (hello: the greeting as a dict, with
`signal`, `step_s`, `seed`, `start_unix_s`) to build the predictor, answers with its name, then answers one
forecast request per line until prescale closes stdin. Anything printed for humans must go to stderr: stdout
carries the protocol. The protocol itself is documented in README.md beside this file.
"""

import json
import math
import sys

PROTOCOL = 1


def serve(make, name):
    """Runs the protocol on stdin/stdout with the predictor `make(hello)` builds, announced as `name`."""
    out = sys.stdout
    hello = json.loads(sys.stdin.readline())
    if hello.get("prescale") != "external-predictor" or hello.get("protocol") != PROTOCOL:
        print(f"unexpected greeting: {hello}", file=sys.stderr)
        sys.exit(2)
    predictor = make(hello)
    out.write(json.dumps({"name": name}) + "\n")
    out.flush()
    for line in sys.stdin:
        msg = json.loads(line)
        predictor.update(msg["observed"])
        answer = predictor.forecast(msg["horizon"])
        if answer is None:
            reply = {"wait": "not enough history"}
        else:
            mean, sd = answer
            reply = {"mean": [float(x) for x in mean], "sd": [float(x) for x in sd]}
        # allow_nan=False: a NaN is a bug of the predictor, and JSON has no NaN; fail loudly here.
        out.write(json.dumps(reply, allow_nan=False) + "\n")
        out.flush()


class Residuals:
    """Exponentially weighted variance of one-step residuals (lambda = 0.02), as prescale's own predictors keep
    it (agents/src/predictor/mod.rs): the plain mean of squares first, then exponential weights."""

    LAMBDA = 0.02

    def __init__(self):
        self.var = 0.0
        self.n = 0

    def push(self, e):
        self.n += 1
        w = max(1.0 / self.n, self.LAMBDA)
        self.var += w * (e * e - self.var)

    def sd(self):
        return math.sqrt(self.var)
