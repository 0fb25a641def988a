"""Helpers the notebooks share: run prescale, and read what it writes into pandas.

prescale writes plain files — a sweep folder holds `experiment.json`, `runs.csv` (one row per run), `report.md`
and `runs/<cell id>/` (`timeseries.csv`, `summary.json`, `scenario.ron`); a model folder holds `card.json`,
`curve.csv` and, after `prescale export`, `model.pt` — so these helpers only parse and never compute a metric
prescale already computed. Column definitions: the module documentation of `sim/src/metrics.rs`.

    import prescale_nb as nb
    sweep = nb.sweep("experiments/provisioning-whatif.ron")       # runs it (resumable) and returns its folder
    runs = nb.runs(sweep)                                          # runs.csv as a DataFrame
    ts = nb.timeseries(nb.run_dir(sweep, controller="hpa", seed=1))
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
"""The repository root (notebooks run with it as their working folder's parent)."""

SCRATCH = REPO / "results" / "notebooks"
"""Where the notebooks write (git-ignored, like all of results/)."""


def binary() -> Path:
    """The release `prescale` binary of this checkout, built if missing (`cargo build --release`)."""
    exe = REPO / "target" / "release" / "prescale"
    if not exe.exists():
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    return exe


def prescale(*args: str | os.PathLike, quiet: bool = True) -> str:
    """Runs `prescale ARGS` in the repository root and returns its standard output; a failure raises with its
    standard error (the message names the file, line or field)."""
    cmd = [str(binary()), *map(str, args)]
    if quiet and args and args[0] in ("sweep", "train", "forecast-eval"):
        cmd.append("--quiet")
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"prescale {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}{p.stdout}")
    return p.stdout


def scratch(name: str, fresh: bool = False) -> Path:
    """A folder for one notebook's files under results/notebooks/ (emptied first with `fresh`)."""
    d = SCRATCH / name
    if fresh and d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True, exist_ok=True)
    return d


def sweep(experiment: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Sweeps `experiment` (an experiment file) into `out` (default results/notebooks/sweeps) and returns the
    experiment's results folder. Finished runs are reused, so rerunning a notebook is cheap."""
    out = Path(out) if out is not None else scratch("sweeps")
    said = prescale("sweep", experiment, "--out", out)
    # The first line is "<out>/<experiment>: N runs done now, ...".
    return REPO / said.splitlines()[0].split(": ", 1)[0]


def experiment(sweep_dir: Path) -> dict:
    """The experiment as the sweep validated it (experiment.json)."""
    return json.loads((Path(sweep_dir) / "experiment.json").read_text())


def runs(sweep_dir: Path) -> pd.DataFrame:
    """runs.csv: one row per finished run (coordinates, then every summary figure), with `family` (the
    controller's family: the name before its knob value) added."""
    df = pd.read_csv(Path(sweep_dir) / "runs.csv")
    fam = {c["name"]: c.get("family") or c["name"] for c in experiment(sweep_dir).get("controllers", [])}
    df["family"] = df["controller"].map(lambda c: fam.get(c, c))
    return df


def run_dir(sweep_dir: Path, **where) -> Path:
    """The folder of the one run of the sweep whose runs.csv columns equal `where` (e.g. controller="hpa",
    seed=1)."""
    df = runs(sweep_dir)
    for k, v in where.items():
        df = df[df[k] == v]
    if len(df) != 1:
        raise ValueError(f"{len(df)} runs match {where}")
    return Path(sweep_dir) / "runs" / df["cell_id"].iloc[0]


def timeseries(run: Path) -> pd.DataFrame:
    """A run's timeseries.csv (one row per control step), with `t_h` (end of the step, hours)."""
    ts = pd.read_csv(Path(run) / "timeseries.csv")
    ts["t_h"] = ts["t_end_s"] / 3600.0
    return ts


def summary(run: Path) -> dict:
    """A run's summary figures (summary.json's `summary`)."""
    return json.loads((Path(run) / "summary.json").read_text())["summary"]


def mean_ci(df: pd.DataFrame, by: list[str] | str, cols: list[str]) -> pd.DataFrame:
    """Means over the rows of each group with 95 % Student-t half-widths (`<col>` and `<col>_ci`), as
    report.md computes them over seeds."""
    from scipy import stats

    def one(g: pd.DataFrame) -> pd.Series:
        out = {}
        for c in cols:
            x = g[c].astype(float).to_numpy()
            out[c] = x.mean()
            out[c + "_ci"] = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)) if len(x) > 1 else np.nan
        out["n"] = len(g)
        return pd.Series(out)

    return df.groupby(by, sort=False).apply(one, include_groups=False).reset_index()


def frontier(points: pd.DataFrame, x: str = "cost_usd", y: str = "slo_violation_minutes") -> pd.DataFrame:
    """The points nothing beats on both `x` and `y` (lower is better on both), sorted by `x`."""
    pts = points.sort_values([x, y])
    keep, best = [], math.inf
    for i, row in pts.iterrows():
        if row[y] < best:
            keep.append(i)
            best = row[y]
    return pts.loc[keep]


def at(front: pd.DataFrame, value: float, x: str = "cost_usd", y: str = "slo_violation_minutes") -> float:
    """`y` on the frontier at `x = value`, joined linearly between its points; NaN outside its range (no
    extrapolation: a family is not credited with settings it was not run at)."""
    xs, ys = front[x].to_numpy(float), front[y].to_numpy(float)
    if len(xs) == 0 or value < xs[0] or value > xs[-1]:
        return math.nan
    return float(np.interp(value, xs, ys))


def forecast_eval(traces: list[str], models: list[str], horizons: list[int], epochs: int = 5) -> pd.DataFrame:
    """`prescale forecast-eval` (the peers' rolling-origin protocol) as a DataFrame: trace, model, source,
    horizon_steps, mae, mase, fit_s."""
    out = scratch("forecast-eval") / "eval.csv"
    prescale(
        "forecast-eval", *traces, "--models", ",".join(models), "--horizons", ",".join(map(str, horizons)),
        "--epochs", str(epochs), "--csv", out,
    )
    return pd.read_csv(out)


def card(model_dir: Path) -> dict:
    """A model folder's card.json (architecture, inputs, normalisation, fit, metrics)."""
    return json.loads((Path(model_dir) / "card.json").read_text())


def curve(model_dir: Path) -> pd.DataFrame:
    """A model folder's curve.csv (training and validation loss per epoch)."""
    return pd.read_csv(Path(model_dir) / "curve.csv")


def use_torch() -> None:
    """Makes `import torch` load the PyTorch that prescale links (scripts/setup-torch.sh: the same 2.13.0
    wheel, cached once per machine), appended to sys.path so this environment's own packages come first."""
    p = subprocess.run([str(REPO / "scripts" / "setup-torch.sh"), "--python"], capture_output=True, text=True,
                       check=True).stdout.strip()
    if p not in sys.path:
        sys.path.append(p)
