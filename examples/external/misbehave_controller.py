#!/usr/bin/env python3
"""An external controller that goes wrong on purpose, for tests: `misbehave_controller.py MODE AT_STEP`.
Before AT_STEP it holds; at AT_STEP, mode `count` answers a negative instance count."""

import json
import sys

mode, at = sys.argv[1], int(sys.argv[2])
sys.stdin.readline()
print(json.dumps({"name": "misbehave-controller"}), flush=True)
for line in sys.stdin:
    step = json.loads(line)["step"]
    if step >= at and mode == "count":
        print(json.dumps({"instances": -3}), flush=True)
    else:
        print(json.dumps({"hold": True}), flush=True)
