#!/usr/bin/env python3
"""A predictor that goes wrong on purpose, for tests: `misbehave.py MODE [AT_STEP]`.

Modes: crash (exits 3 at step AT_STEP), hang (stops answering at AT_STEP), garbage (answers a line that is not
JSON), nan (answers NaN, written as JSON does not allow), count (one value too few), negative (a negative sd),
noname (a greeting answer without a name). Before AT_STEP it answers like the last-value predictor.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from last_value import LastValue  # noqa: E402

mode = sys.argv[1]
at = int(sys.argv[2]) if len(sys.argv) > 2 else 0
sys.stdin.readline()
if mode == "noname":
    print(json.dumps({"hello": 1}), flush=True)
    sys.exit(0)
print(json.dumps({"name": "misbehave"}), flush=True)
p = LastValue()
for line in sys.stdin:
    msg = json.loads(line)
    p.update(msg["observed"])
    h = msg["horizon"]
    if msg["step"] >= at:
        print(f"misbehaving ({mode}) at step {msg['step']}", file=sys.stderr, flush=True)
        if mode == "crash":
            sys.exit(3)
        if mode == "hang":
            time.sleep(3600)
        if mode == "garbage":
            print("this is not json", flush=True)
            continue
        if mode == "nan":
            print(json.dumps({"mean": [float("nan")] * h, "sd": [1.0] * h}), flush=True)
            continue
        if mode == "count":
            print(json.dumps({"mean": [1.0] * (h - 1), "sd": [1.0] * (h - 1)}), flush=True)
            continue
        if mode == "negative":
            print(json.dumps({"mean": [1.0] * h, "sd": [-1.0] * h}), flush=True)
            continue
    f = p.forecast(h)
    print(json.dumps({"wait": "warming up"} if f is None else {"mean": f[0], "sd": f[1]}), flush=True)
