#!/usr/bin/env python3
"""statsforecast's AutoETS as a prescale predictor (run it with the project's Python: scripts/python).

    autoets.py [--window-s 259200] [--refit-every-s 3600] [--min-history-s 3600]

The model is chosen and fitted (AutoETS: error, trend and season by AICc) on the last `--window-s` of history
(3 days, as the peers' rolling-origin protocol in ../shared/peers/forecast_baselines.py), refitted every
`--refit-every-s`; between refits the fitted model is run forward over the newest window (`forward`: no
refit, a millisecond). Seasonal with a daily season when it is 2 to 24 steps long (statsforecast's ETS does not
take longer seasons), otherwise non-seasonal (ZZN) — the peers' rule. The standard deviation per horizon is
half the width of the 68.27 % prediction interval. Deterministic: the same history gives the same answers.
"""

import argparse
import os
import sys
from collections import deque

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prescale_external import serve  # noqa: E402

# statsforecast compiles with numba on first use and caches the result; keep its chatter off stdout.
from statsforecast.models import AutoETS  # noqa: E402


class AutoEts:
    def __init__(self, step_s, window_s, refit_every_s, min_history_s):
        self.window = deque(maxlen=max(2, round(window_s / step_s)))
        self.refit_every = max(1, round(refit_every_s / step_s))
        self.min_history = max(2, round(min_history_s / step_s))
        m = round(86400 / step_s)
        self.season = m if 2 <= m <= 24 else 1
        self.model = None
        self.since_fit = 0

    def update(self, values):
        self.window.extend(values)
        self.since_fit += len(values)

    def forecast(self, horizon):
        if len(self.window) < max(self.min_history, 2 * self.season):
            return None
        y = np.asarray(self.window, dtype=float)
        if self.model is None or self.since_fit >= self.refit_every:
            spec = "ZZZ" if self.season > 1 else "ZZN"
            self.model = AutoETS(season_length=self.season, model=spec).fit(y)
            self.since_fit = 0
        f = self.model.forward(y=y, h=horizon, level=[68.27])
        mean = np.asarray(f["mean"], dtype=float)
        sd = np.maximum((np.asarray(f["hi-68.27"]) - np.asarray(f["lo-68.27"])) / 2.0, 0.0)
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(sd))):
            return None  # a degenerate fit: let prescale use its reactive rule this tick
        return mean.tolist(), sd.tolist()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window-s", type=float, default=3 * 86400)
    ap.add_argument("--refit-every-s", type=float, default=3600)
    ap.add_argument("--min-history-s", type=float, default=3600)
    a = ap.parse_args()
    serve(lambda hello: AutoEts(hello["step_s"], a.window_s, a.refit_every_s, a.min_history_s), "autoets")


if __name__ == "__main__":
    main()
