#!/usr/bin/env python3
"""An external *controller*: REFERENCE_MODEL §4.5's HPA-style rule, answering each tick's observation with the
number of instances to have. The same arithmetic as prescale's built-in `ReferenceHpa`
(sim/src/controller.rs), so a run with it equals a run with the built-in one bit for bit (tests/external.rs).

    reference_hpa.py [--target 0.6] [--tolerance 0.1] [--min 1] [--max 80]

Standard library only. The protocol (JSON lines) is in README.md beside this file.
"""

import argparse
import json
import math
import sys


def decide(o, target, tolerance, lo, hi):
    allocated = o["ready_instances"] + o["provisioning_instances"]
    if o["ready_instances"] == 0 and o["static_ready_servers"] == 0:
        return {"instances": lo} if allocated < lo else {"hold": True}
    r = float(o["ready_instances"])
    s = float(o["servers_per_instance"])
    others = float(o["static_ready_servers"])
    busy, dt = o["busy_server_s"], o["interval_s"]
    util = busy / (s * dt * r) if others == 0.0 else busy / (dt * (s * r + others))
    if abs(util / target - 1.0) <= tolerance:
        return {"hold": True}
    wanted = r * util / target if others == 0.0 else (busy / (dt * target) - others) / s
    return {"instances": int(min(max(math.ceil(wanted), lo), hi))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", type=float, default=0.6)
    ap.add_argument("--tolerance", type=float, default=0.1)
    ap.add_argument("--min", type=int, default=1)
    ap.add_argument("--max", type=int, default=80)
    a = ap.parse_args()
    hello = json.loads(sys.stdin.readline())
    if hello.get("prescale") != "external-controller" or hello.get("protocol") != 1:
        print(f"unexpected greeting: {hello}", file=sys.stderr)
        return 2
    print(json.dumps({"name": "reference-hpa.py"}), flush=True)
    for line in sys.stdin:
        o = json.loads(line)["observation"]
        print(json.dumps(decide(o, a.target, a.tolerance, a.min, a.max)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
