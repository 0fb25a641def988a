#!/usr/bin/env python3
"""Runs an exported prescale model (TorchScript) in real PyTorch, outside Rust.

    PYTHONPATH=$(scripts/setup-torch.sh --python) python3 scripts/check_export.py MODEL_DIR INPUTS.json

INPUTS.json: {"shape": [batch, window, columns], "data": [floats, row-major]}. Prints the outputs as JSON
({"shape": [...], "data": [...]}) on stdout. The card's input and output columns are checked against the
module's shapes first. The outputs are [batch, horizons x targets, outputs], rows horizon-major: row
(h - 1) * len(targets) + t is target t (card["spec"]["targets"], default ["Rate"]) h steps ahead.
"""
import json
import sys
from pathlib import Path

import torch


def main() -> int:
    model_dir, inputs = Path(sys.argv[1]), Path(sys.argv[2])
    card = json.loads((model_dir / "card.json").read_text())
    module = torch.jit.load(str(model_dir / "model.pt"))
    module.eval()
    spec = json.loads(inputs.read_text())
    x = torch.tensor(spec["data"], dtype=torch.float32).reshape(spec["shape"])
    if x.shape[1] != card["spec"]["window_steps"] or x.shape[2] != len(card["input_columns"]):
        print(f"inputs {list(x.shape)} do not match the card's window and input columns", file=sys.stderr)
        return 1
    with torch.no_grad():
        y = module(x)
    # One row per horizon and target, horizon-major (targets default to the request rate alone).
    rows = card["spec"]["horizon_steps"] * len(card["spec"].get("targets", ["Rate"]))
    if list(y.shape[1:]) != [rows, len(card["output_columns"])]:
        print(f"outputs {list(y.shape)} do not match the card", file=sys.stderr)
        return 1
    json.dump({"shape": list(y.shape), "data": y.flatten().tolist()}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
