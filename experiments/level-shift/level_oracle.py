#!/usr/bin/env python3
"""A predictor told the future *level* of a trace, and nothing else: the reference that asks how close perfect
level adaptation can come to the hindsight expert (experiments/level-shift/README.md, "What level adaptation can
reach").

It reads the scenario's trace itself and forecasts, for each horizon h, the median rate of the window of
2 * half-window + 1 steps centred on the step h ahead, with 1.4826 x that window's median absolute deviation as
the sd. So it knows the level exactly, before it shifts, but not which minute a burst will fall on. The run's
own variance controller and allocator act on it as on any predictor (an external predictor, see
examples/external/README.md).

    level_oracle.py TRACE [--column value] [--timestamp-column timestamp] [--scale 0.4] [--half-window-steps 30]

The trace is read as the scenario reads it with `meaning: RequestsPerInterval` and `gaps: Hold`: each record
holds `value x scale / interval` requests per second from its timestamp (ISO-8601, read as UTC, or Unix
seconds) until the next; the interval is the median spacing of the records. Every observed value is checked
against that rate (to a whole request per step, the fluid model's rounding): a predictor aligned with the wrong
minutes would be no oracle, so more than 1 % of mismatched steps stops it with an error, which fails the run.
Standard library only.
"""

import argparse
import bisect
import csv
import datetime
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "external"))
from prescale_external import serve  # noqa: E402

MAD_TO_SD = 1.4826
MISMATCH_SHARE = 0.01


def read_rates(path, column, time_column, scale):
    """The trace as (record start times in Unix seconds, requests per second), sorted by time."""
    times, values = [], []
    with open(path, newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            raw_t = row[time_column]
            try:
                t = float(raw_t)
            except ValueError:
                t = datetime.datetime.fromisoformat(raw_t)
                if t.tzinfo is None:
                    t = t.replace(tzinfo=datetime.timezone.utc)
                t = t.timestamp()
            try:
                v = float(row[column])
            except (TypeError, ValueError):
                sys.exit(f"{path}:{line}: column '{column}': expected a number, got {row.get(column)!r}")
            times.append(t)
            values.append(v)
    order = sorted(range(len(times)), key=times.__getitem__)
    times = [times[i] for i in order]
    values = [values[i] for i in order]
    interval_s = statistics.median(b - a for a, b in zip(times, times[1:]))
    return times, [v * scale / interval_s for v in values]


class LevelOracle:
    def __init__(self, hello, times, rates, half):
        self.step_s = hello["step_s"]
        self.t0 = hello["start_unix_s"]
        self.times, self.rates, self.half = times, rates, half
        self.steps = 0
        self.mismatches = 0

    def rate_at_step(self, k):
        i = bisect.bisect_right(self.times, self.t0 + k * self.step_s) - 1
        return self.rates[min(max(i, 0), len(self.rates) - 1)]

    def update(self, values):
        for y in values:
            expected = self.rate_at_step(self.steps)
            if abs(expected - y) > 1.0 / self.step_s + 1e-9 * abs(expected):
                self.mismatches += 1
            self.steps += 1
        if self.steps >= 100 and self.mismatches > MISMATCH_SHARE * self.steps:
            sys.exit(
                f"level_oracle: {self.mismatches} of {self.steps} observed steps differ from the trace's rate: "
                "the trace, --column or --scale is not the scenario's"
            )

    def forecast(self, horizon):
        if self.steps == 0:
            return None
        means, sds = [], []
        for h in range(1, horizon + 1):
            centre = self.steps - 1 + h
            window = [self.rate_at_step(centre + k) for k in range(-self.half, self.half + 1)]
            level = statistics.median(window)
            means.append(level)
            sds.append(MAD_TO_SD * statistics.median(abs(x - level) for x in window))
        return means, sds


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("trace")
    p.add_argument("--column", default="value")
    p.add_argument("--timestamp-column", default="timestamp")
    p.add_argument("--scale", type=float, default=1.0, help="the scenario's amplitude_scale")
    p.add_argument("--half-window-steps", type=int, default=30)
    args = p.parse_args()
    times, rates = read_rates(args.trace, args.column, args.timestamp_column, args.scale)
    serve(lambda hello: LevelOracle(hello, times, rates, args.half_window_steps), "level-oracle")


if __name__ == "__main__":
    main()
